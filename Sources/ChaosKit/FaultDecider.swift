import Crypto
import Foundation

/// The pure rule behind every decision: whether the n-th call at point P fails is a function of
/// (seed, P, n) alone. A 64-bit key is derived from the seed once (SHA-256); each decision mixes key, point and
/// ordinal with a 64-bit finalizer and compares the result with the rate. No state, no lock, a few nanoseconds.
public enum FaultDecider {
    /// The 64-bit key of a seed: the first 8 bytes of its SHA-256.
    public static func key(forSeed seed: String) -> UInt64 {
        let digest = Array(SHA256.hash(data: Data(seed.utf8)))
        return digest[0..<8].reduce(0) { ($0 << 8) | UInt64($1) }
    }

    /// A stable 64-bit hash of a point's name (FNV-1a), so the same name decides the same way in every process.
    public static func pointHash(_ name: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }

    /// Whether call number `ordinal` (1, 2, …) at the point fails at `rate` (0…1). Rate 0 never fires,
    /// rate 1 always does.
    @inline(__always)
    public static func fires(key: UInt64, pointHash: UInt64, ordinal: UInt64, rate: Double) -> Bool {
        if rate <= 0 { return false }
        if rate >= 1 { return true }
        let mixed = mix(key ^ mix(pointHash ^ mix(ordinal &+ 0x9E37_79B9_7F4A_7C15)))
        // The top 53 bits as a uniform number in [0, 1).
        let uniform = Double(mixed >> 11) * 0x1.0p-53
        return uniform < rate
    }

    /// MurmurHash3's 64-bit finalizer: every input bit affects every output bit.
    @inline(__always)
    static func mix(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x = x &* 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x = x &* 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }
}
