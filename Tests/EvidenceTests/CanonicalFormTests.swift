import Evidence
import Foundation
import Testing

@Suite("Canonical form", .timeLimit(.minutes(10)))
struct CanonicalFormTests {
    static let record = EvidenceRecord(
        id: UUID(uuidString: "00000000-0000-0000-0000-000000000001")!, seq: 1,
        occurredAtMicros: 1_795_267_448_123_456, controlId: "CC-7.2", category: "ProcessingIntegrity",
        eventType: "SHADOW_WRITE_FAILURE", eventOutcome: "FAILURE", entityType: "listing", entityId: "l-1",
        requestId: nil, details: CanonicalJSON.object(["b": "x\"y", "a": 1]).text,
        previousHash: EvidenceRecord.genesisHash, contentHash: "")

    /// The expected text and hash were computed independently of this code, so a change to the canonical form
    /// (which would orphan every stored chain) fails here.
    @Test func theCanonicalFormAndHashAreFixed() {
        let expected = #"{"category":"ProcessingIntegrity","controlId":"CC-7.2","details":{"a":1,"b":"x\"y"},"entityId":"l-1","entityType":"listing","eventOutcome":"FAILURE","eventType":"SHADOW_WRITE_FAILURE","id":"00000000-0000-0000-0000-000000000001","occurredAt":"2026-11-21T13:24:08.123456Z","previousHash":"0000000000000000000000000000000000000000000000000000000000000000","requestId":null,"seq":1}"#
        #expect(EvidenceHasher.canonicalForm(of: Self.record) == expected)
        #expect(EvidenceHasher.contentHash(of: Self.record) == "82e8d051f292dc8199750aa7a0fb89d310ec22c75025057d0fc88d956931c52f")
    }

    /// The record's own fields are escaped exactly as canonical JSON escapes them.
    @Test func recordFieldsEscapeLikeCanonicalJSON() {
        let awkward = "quote\" back\\ nl\n cr\r tab\t bell\u{07} nul\u{00} é 😀 \u{7F}"
        var record = Self.record
        record.entityId = awkward
        record.category = awkward
        let form = EvidenceHasher.canonicalForm(of: record)
        let expected = CanonicalJSON.string(awkward).text
        #expect(form.contains(#""entityId":"# + expected + ","))
        #expect(form.hasPrefix(#"{"category":"# + expected + ","))
    }

    @Test func canonicalJSONSortsKeysAndEscapesMinimally() {
        let value: CanonicalJSON = ["z": [1, true, .null], "a": "tab\there \u{01} é", "m": ["y": 2, "b": 1]]
        #expect(value.text == #"{"a":"tab\there \u0001 é","m":{"b":1,"y":2},"z":[1,true,null]}"#)
    }

    @Test func timesAreRFC3339WithMicroseconds() {
        #expect(EvidenceTime.rfc3339(micros: 0) == "1970-01-01T00:00:00.000000Z")
        #expect(EvidenceTime.rfc3339(micros: 951_782_400_000_001) == "2000-02-29T00:00:00.000001Z")
        #expect(EvidenceTime.rfc3339(micros: -1) == "1969-12-31T23:59:59.999999Z")
        #expect(EvidenceTime.rfc3339(micros: 4_102_444_799_999_999) == "2099-12-31T23:59:59.999999Z")
    }

    @Test func theVerifierFindsEachKindOfBreak() {
        var records: [EvidenceRecord] = []
        var head = (seq: Int64(0), hash: EvidenceRecord.genesisHash)
        for index in 0..<5 {
            let record = EvidenceHasher.seal(
                EvidenceEvent(controlId: "CC-7.2", category: "ProcessingIntegrity", eventType: "X", eventOutcome: "SUCCESS",
                              details: ["n": .integer(Int64(index))]),
                occurredAtMicros: 1_000_000 * Int64(index), previousSeq: head.seq, previousHash: head.hash)
            records.append(record)
            head = (record.seq, record.contentHash)
        }
        var intact = ChainVerifier()
        #expect(records.allSatisfy { intact.check($0) })
        #expect(intact.records == 5 && intact.headSeq == 5 && intact.headHash == head.hash)

        var edited = records
        edited[2].details = #"{"n":99}"#
        var verifier = ChainVerifier()
        edited.forEach { verifier.check($0) }
        #expect(verifier.firstInvalid?.seq == 3)
        #expect(verifier.firstInvalid?.failure == .contentHashMismatch)

        var dropped = records
        dropped.remove(at: 1)
        var gapVerifier = ChainVerifier()
        dropped.forEach { gapVerifier.check($0) }
        #expect(gapVerifier.firstInvalid?.seq == 3)
        #expect(gapVerifier.firstInvalid?.failure == .sequenceGap)
    }

    @Test func digestsParseStrictly() {
        let hash = String(repeating: "a", count: 64)
        #expect(EvidenceDigest("12:\(hash)") == EvidenceDigest(seq: 12, hash: hash))
        for bad in ["", "12", "0:\(hash)", "-1:\(hash)", "x:\(hash)", "12:\(hash.uppercased())", "12:abc"] {
            #expect(EvidenceDigest(bad) == nil, "\(bad)")
        }
    }
}
