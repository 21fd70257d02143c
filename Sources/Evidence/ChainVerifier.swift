import BallastCore

/// Recomputes a chain record by record, in `seq` order, and stops at the first record that does not fit:
/// a gap in `seq`, a `previousHash` that is not the hash before it, or a `contentHash` that does not match the
/// record's content. Feed it records in batches; it keeps only the running head.
public struct ChainVerifier: Sendable {
    /// Why a record failed.
    public enum Failure: String, Sendable, Equatable {
        case sequenceGap = "sequence_gap"
        case previousHashMismatch = "previous_hash_mismatch"
        case contentHashMismatch = "content_hash_mismatch"
        case digestMismatch = "digest_mismatch"
    }

    public private(set) var records: Int64 = 0
    public private(set) var headSeq: Int64 = 0
    public private(set) var headHash: String = EvidenceRecord.genesisHash
    public private(set) var firstInvalid: (id: String, seq: Int64, failure: Failure)?

    public init() {}

    public var isValid: Bool { firstInvalid == nil }

    /// Checks the next record; returns false (and remembers it) at the first failure, after which further
    /// records are ignored.
    @discardableResult
    public mutating func check(_ record: EvidenceRecord) -> Bool {
        guard firstInvalid == nil else { return false }
        records += 1
        let failure: Failure?
        if record.seq != headSeq + 1 {
            failure = .sequenceGap
        } else if record.previousHash != headHash {
            failure = .previousHashMismatch
        } else if EvidenceHasher.contentHash(of: record) != record.contentHash {
            failure = .contentHashMismatch
        } else {
            failure = nil
        }
        if let failure {
            firstInvalid = (record.id.lowercasedString, record.seq, failure)
            return false
        }
        headSeq = record.seq
        headHash = record.contentHash
        return true
    }

    /// After checking, marks the record at `seq` invalid if its hash is not the one a digest pinned.
    public mutating func checkDigest(seq: Int64, hash: String, record: EvidenceRecord?) {
        guard firstInvalid == nil else { return }
        guard let record, record.seq == seq, record.contentHash == hash else {
            firstInvalid = (record?.id.lowercasedString ?? "", seq, .digestMismatch)
            return
        }
    }
}

/// A chain head kept outside the database: `SEQ:HASH`.
public struct EvidenceDigest: Sendable, Equatable, CustomStringConvertible {
    public let seq: Int64
    public let hash: String

    public init(seq: Int64, hash: String) {
        self.seq = seq
        self.hash = hash
    }

    /// Parses `SEQ:HASH` (a positive integer and 64 lower-case hex digits).
    public init?(_ text: String) {
        // ASCII only: 1 to 18 digits without a leading zero, a colon, 64 lower-case hex digits.
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, (1...18).contains(parts[0].utf8.count), parts[0].utf8.first != UInt8(ascii: "0"),
              parts[0].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seq = Int64(parts[0]),
              parts[1].utf8.count == 64,
              parts[1].utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { return nil }
        self.seq = seq
        self.hash = String(parts[1])
    }

    public var description: String { "\(seq):\(hash)" }
}
