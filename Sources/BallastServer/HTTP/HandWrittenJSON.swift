import BallastWire
import Foundation

/// An answer body written as JSON by hand: the answers of the busiest requests (the caller itself, a wallet, a
/// debit or credit), whose `Codable` encoding cost more of the server's CPU than the rest of their request.
/// The bytes are exactly those ``JSONResponse/encoder`` writes for the same value (keys in sorted order, slashes
/// not escaped, control characters escaped, times in RFC 3339): a test compares the two on generated values, so
/// the `Codable` conformance stays the definition and this is only a faster way to the same text.
protocol HandWrittenJSON: Encodable {
    func write(to json: inout JSONText)
}

/// JSON text being written, as UTF-8 bytes.
struct JSONText {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    /// Text written as is: punctuation and keys, which the caller spells in JSON already.
    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// A JSON string: `"`, `\` and control characters escaped as the encoder escapes them, everything else as is.
    mutating func string(_ value: String) {
        bytes.append(0x22)
        for byte in value.utf8 {
            switch byte {
            case 0x22: raw(#"\""#)
            case 0x5C: raw(#"\\"#)
            case 0x08: raw(#"\b"#)
            case 0x0C: raw(#"\f"#)
            case 0x0A: raw(#"\n"#)
            case 0x0D: raw(#"\r"#)
            case 0x09: raw(#"\t"#)
            case 0x00..<0x20:
                raw(#"\u00"#)
                bytes.append(Self.hexDigit(byte >> 4))
                bytes.append(Self.hexDigit(byte & 0x0F))
            default: bytes.append(byte)
            }
        }
        bytes.append(0x22)
    }

    /// A string, or `null`.
    mutating func nullableString(_ value: String?) {
        if let value { string(value) } else { raw("null") }
    }

    mutating func integer(_ value: Int64) {
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func time(_ value: Date) {
        string(RFC3339.string(from: value))
    }

    mutating func object(_ value: some HandWrittenJSON) {
        value.write(to: &self)
    }

    private static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? 0x30 + nibble : 0x61 + nibble - 10
    }
}

extension HandWrittenJSON {
    /// The whole body, as bytes.
    var jsonBytes: [UInt8] {
        var json = JSONText()
        write(to: &json)
        return json.bytes
    }
}

extension UserBody: HandWrittenJSON {
    func write(to json: inout JSONText) {
        json.raw(#"{"createdAt":"#)
        json.time(createdAt)
        json.raw(#","id":"#)
        json.string(id)
        json.raw(#","name":"#)
        json.string(name)
        json.raw(#","role":"#)
        json.string(role)
        json.raw("}")
    }
}

extension WalletBody: HandWrittenJSON {
    func write(to json: inout JSONText) {
        json.raw(#"{"balance":"#)
        json.integer(balance)
        json.raw(#","createdAt":"#)
        json.time(createdAt)
        json.raw(#","currency":"#)
        json.string(currency)
        json.raw(#","id":"#)
        json.string(id)
        json.raw(#","ownerId":"#)
        json.string(ownerId)
        json.raw("}")
    }
}

extension LedgerEntryBody: HandWrittenJSON {
    func write(to json: inout JSONText) {
        json.raw(#"{"amount":"#)
        json.integer(amount)
        json.raw(#","balanceAfter":"#)
        json.integer(balanceAfter)
        json.raw(#","createdAt":"#)
        json.time(createdAt)
        json.raw(#","id":"#)
        json.string(id)
        json.raw(#","kind":"#)
        json.string(kind)
        json.raw(#","reference":"#)
        json.nullableString(reference)
        json.raw("}")
    }
}

extension MovementBody: HandWrittenJSON {
    func write(to json: inout JSONText) {
        json.raw(#"{"transaction":"#)
        json.object(transaction)
        json.raw(#","wallet":"#)
        json.object(wallet)
        json.raw("}")
    }
}
