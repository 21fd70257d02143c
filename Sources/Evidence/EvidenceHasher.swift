import BallastCore
import Crypto
import Foundation

/// The canonical form of a record and its SHA-256.
///
/// The canonical form is the canonical JSON object of every field except `contentHash` itself: `category`,
/// `controlId`, `details` (the stored canonical text, verbatim), `entityId`, `entityType`, `eventOutcome`,
/// `eventType`, `id` (lower-case UUID), `occurredAt` (RFC 3339 UTC with microseconds), `previousHash`,
/// `requestId` and `seq`, keys in that (sorted) order, absent values as `null`. Because it includes `seq` and
/// `previousHash`, a record cannot be moved, dropped or rewritten without every later hash changing.
public enum EvidenceHasher {
    public static func canonicalForm(of record: EvidenceRecord) -> String {
        String(decoding: canonicalBytes(of: record), as: UTF8.self)
    }

    /// The canonical form as UTF-8 bytes, written straight into one buffer (the verifier's hot path: no
    /// intermediate strings, no formatting calls).
    public static func canonicalBytes(of record: EvidenceRecord) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(320 + record.details.utf8.count)
        out.append(contentsOf: #"{"category":"#.utf8)
        CanonicalBytes.string(record.category, into: &out)
        out.append(contentsOf: #","controlId":"#.utf8)
        CanonicalBytes.string(record.controlId, into: &out)
        out.append(contentsOf: #","details":"#.utf8)
        out.append(contentsOf: record.details.utf8)
        out.append(contentsOf: #","entityId":"#.utf8)
        CanonicalBytes.optional(record.entityId, into: &out)
        out.append(contentsOf: #","entityType":"#.utf8)
        CanonicalBytes.optional(record.entityType, into: &out)
        out.append(contentsOf: #","eventOutcome":"#.utf8)
        CanonicalBytes.string(record.eventOutcome, into: &out)
        out.append(contentsOf: #","eventType":"#.utf8)
        CanonicalBytes.string(record.eventType, into: &out)
        out.append(contentsOf: #","id":""#.utf8)
        CanonicalBytes.uuid(record.id, into: &out)
        out.append(contentsOf: #"","occurredAt":""#.utf8)
        EvidenceTime.writeRFC3339(micros: record.occurredAtMicros, into: &out)
        out.append(contentsOf: #"","previousHash":"#.utf8)
        CanonicalBytes.string(record.previousHash, into: &out)
        out.append(contentsOf: #","requestId":"#.utf8)
        CanonicalBytes.optional(record.requestId, into: &out)
        out.append(contentsOf: #","seq":"#.utf8)
        out.append(contentsOf: String(record.seq).utf8)
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Lower-case hex SHA-256 of the canonical form.
    public static func contentHash(of record: EvidenceRecord) -> String {
        hex(SHA256.hash(data: canonicalBytes(of: record)))
    }

    /// Builds the next record of a chain whose head is (`previousSeq`, `previousHash`).
    public static func seal(
        _ event: EvidenceEvent, id: UUID = .random(), occurredAtMicros: Int64, previousSeq: Int64, previousHash: String
    ) -> EvidenceRecord {
        var record = EvidenceRecord(
            id: id, seq: previousSeq + 1, occurredAtMicros: occurredAtMicros, controlId: event.controlId,
            category: event.category, eventType: event.eventType, eventOutcome: event.eventOutcome,
            entityType: event.entityType, entityId: event.entityId, requestId: event.requestId,
            details: event.details.text, previousHash: previousHash, contentHash: "")
        record.contentHash = contentHash(of: record)
        return record
    }

    static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex of a digest, without a formatter (also used for token and request hashes).
    public static func hex(_ digest: SHA256.Digest) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(hexDigits[Int(byte >> 4)])
            bytes.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Byte-level writers for the canonical form; the escaping rules are those of ``CanonicalJSON``.
enum CanonicalBytes {
    static func string(_ value: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(EvidenceHasher.hexDigits[Int(byte >> 4)])
                out.append(EvidenceHasher.hexDigits[Int(byte & 0x0F)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    static func optional(_ value: String?, into out: inout [UInt8]) {
        if let value { string(value, into: &out) } else { out.append(contentsOf: "null".utf8) }
    }

    /// The UUID in lower-case 8-4-4-4-12 form.
    static func uuid(_ id: UUID, into out: inout [UInt8]) {
        withUnsafeBytes(of: id.uuid) { bytes in
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
                out.append(EvidenceHasher.hexDigits[Int(byte >> 4)])
                out.append(EvidenceHasher.hexDigits[Int(byte & 0x0F)])
            }
        }
    }
}

/// RFC 3339 UTC with exactly six fraction digits, computed from integer microseconds (no floating point), so
/// the text is the same on every platform.
public enum EvidenceTime {
    public static func rfc3339(micros: Int64) -> String {
        var out = [UInt8]()
        out.reserveCapacity(27)
        writeRFC3339(micros: micros, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func writeRFC3339(micros: Int64, into out: inout [UInt8]) {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let date = CivilDate(daysSinceEpoch: days)
        let (year, month, day) = (date.year, Int64(date.month), Int64(date.day))
        digits(year, width: 4, into: &out)
        out.append(UInt8(ascii: "-"))
        digits(month, width: 2, into: &out)
        out.append(UInt8(ascii: "-"))
        digits(day, width: 2, into: &out)
        out.append(UInt8(ascii: "T"))
        digits(secondOfDay / 3600, width: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        digits((secondOfDay % 3600) / 60, width: 2, into: &out)
        out.append(UInt8(ascii: ":"))
        digits(secondOfDay % 60, width: 2, into: &out)
        out.append(UInt8(ascii: "."))
        digits(fraction, width: 6, into: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// A non-negative number in decimal, zero-padded to `width` digits.
    private static func digits(_ value: Int64, width: Int, into out: inout [UInt8]) {
        var buffer = [UInt8](repeating: UInt8(ascii: "0"), count: width)
        var rest = value
        var index = width - 1
        while index >= 0 {
            buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
            rest /= 10
            index -= 1
        }
        out.append(contentsOf: buffer)
    }
}
