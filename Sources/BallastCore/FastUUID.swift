import Foundation

extension UUID {
    /// A new random (version 4) UUID from the system's secure generator.
    ///
    /// `UUID()` on this platform opens, reads and closes the random device for every id: three system calls and a
    /// file descriptor, on every request (its request id, its ledger rows). This draws the same 122 random bits
    /// from the system generator directly, without a file.
    public static func random() -> UUID {
        var generator = SystemRandomNumberGenerator()
        var high = generator.next() as UInt64
        var low = generator.next() as UInt64
        // Version 4 in the high nibble of byte 6; variant 10 in the top bits of byte 8 (RFC 9562 §5.4).
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        let h = high.bigEndian, l = low.bigEndian
        return withUnsafeBytes(of: (h, l)) { raw in
            UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                        raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]))
        }
    }

    /// The lower-case text form (`8-4-4-4-12` hex digits), as the API and the stores spell ids; the same as
    /// `uuidString.lowercased()`, written in one pass into one string.
    public var lowercasedString: String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var out = 0
            withUnsafeBytes(of: uuid) { raw in
                digits.withUTF8Buffer { hex in
                    for index in 0..<16 {
                        if index == 4 || index == 6 || index == 8 || index == 10 {
                            buffer[out] = 0x2D
                            out += 1
                        }
                        let byte = raw[index]
                        buffer[out] = hex[Int(byte >> 4)]
                        buffer[out + 1] = hex[Int(byte & 0x0F)]
                        out += 2
                    }
                }
            }
            return out
        }
    }
}
