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
        var output = "{\"category\":"
        CanonicalJSON.writeString(record.category, into: &output)
        output += ",\"controlId\":"
        CanonicalJSON.writeString(record.controlId, into: &output)
        output += ",\"details\":"
        output += record.details
        output += ",\"entityId\":"
        writeOptional(record.entityId, into: &output)
        output += ",\"entityType\":"
        writeOptional(record.entityType, into: &output)
        output += ",\"eventOutcome\":"
        CanonicalJSON.writeString(record.eventOutcome, into: &output)
        output += ",\"eventType\":"
        CanonicalJSON.writeString(record.eventType, into: &output)
        output += ",\"id\":\""
        output += record.id.uuidString.lowercased()
        output += "\",\"occurredAt\":\""
        output += EvidenceTime.rfc3339(micros: record.occurredAtMicros)
        output += "\",\"previousHash\":"
        CanonicalJSON.writeString(record.previousHash, into: &output)
        output += ",\"requestId\":"
        writeOptional(record.requestId, into: &output)
        output += ",\"seq\":"
        output += String(record.seq)
        output += "}"
        return output
    }

    /// Lower-case hex SHA-256 of the canonical form.
    public static func contentHash(of record: EvidenceRecord) -> String {
        hex(SHA256.hash(data: Data(canonicalForm(of: record).utf8)))
    }

    /// Builds the next record of a chain whose head is (`previousSeq`, `previousHash`).
    public static func seal(
        _ event: EvidenceEvent, id: UUID = UUID(), occurredAtMicros: Int64, previousSeq: Int64, previousHash: String
    ) -> EvidenceRecord {
        var record = EvidenceRecord(
            id: id, seq: previousSeq + 1, occurredAtMicros: occurredAtMicros, controlId: event.controlId,
            category: event.category, eventType: event.eventType, eventOutcome: event.eventOutcome,
            entityType: event.entityType, entityId: event.entityId, requestId: event.requestId,
            details: event.details.text, previousHash: previousHash, contentHash: "")
        record.contentHash = contentHash(of: record)
        return record
    }

    private static func writeOptional(_ value: String?, into output: inout String) {
        if let value { CanonicalJSON.writeString(value, into: &output) } else { output += "null" }
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    static func hex(_ digest: SHA256.Digest) -> String {
        var bytes = [UInt8]()
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(hexDigits[Int(byte >> 4)])
            bytes.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// RFC 3339 UTC with exactly six fraction digits, computed from integer microseconds (no floating point), so
/// the text is the same on every platform.
public enum EvidenceTime {
    public static func rfc3339(micros: Int64) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let fraction = micros - seconds * 1_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        return String(format: "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld.%06lldZ",
                      year, month, day, secondOfDay / 3600, (secondOfDay % 3600) / 60, secondOfDay % 60, fraction)
    }

    /// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
    static func civilDate(daysSinceEpoch: Int64) -> (Int64, Int64, Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }
}
