import Crypto
import Evidence
import Foundation

/// Bearer tokens: 32 random bytes, base64url without padding (43 characters), prefixed `blt_` so a leaked one
/// is recognisable. Only the SHA-256 of a token is stored; comparisons run in constant time.
public enum AccessToken {
    public static let prefix = "blt_"
    /// Tokens longer than this are refused without hashing (bounded work per request).
    public static let maxLength = 512

    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return prefix + base64URL(Data(bytes))
    }

    /// Lower-case hex SHA-256 of the token's UTF-8 bytes.
    public static func hash(_ token: String) -> String {
        EvidenceHasher.hex(SHA256.hash(data: Array(token.utf8)))
    }

    /// Compares two equal-length strings without stopping at the first difference.
    public static func constantTimeEquals(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
