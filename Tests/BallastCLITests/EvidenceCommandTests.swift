import BallastConfig
import BallastTestSupport
import Evidence
import EvidenceStore
import Foundation
import Commerce
import SQLKit
import Storage
import Testing

extension ChildProcesses {
    @Suite("ballast evidence", .serialized)
    struct EvidenceCommandTests {
        @Test(arguments: TestStores.kinds)
        func digestVerifyExportAndCatchATamperedRow(kind: StoreKind) async throws {
            try await TestStores.withFreshURL(kind) { url in
                let environment = ["DATABASE_URL": CLITests.connectionString(url), "APP_ENV": "staging"]
                #expect(try await BallastProcess.run(["migrate"], environment: environment).status == 0)
                let ids = try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    try await EvidenceLog(database: database).append((1...12).map { index in
                        EvidenceEvent(controlId: "CC-7.2", category: "ProcessingIntegrity", eventType: "SHADOW_WRITE_FAILURE",
                                      eventOutcome: "FAILURE", entityType: "listing", entityId: "listing-\(index)",
                                      details: ["note": "has, a comma and \"quotes\""])
                    }).map { $0.id.uuidString.lowercased() }
                }

                let digest = try await BallastProcess.run(["evidence", "digest"], environment: environment)
                #expect(digest.status == 0, "\(digest.stderr)")
                let pinned = digest.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                #expect(EvidenceDigest(pinned)?.seq == 12)

                let verify = try await BallastProcess.run(["evidence", "verify"], environment: environment)
                #expect(verify.status == 0)
                #expect(verify.stdout.contains(#""valid":true"#))
                #expect(verify.stdout.contains(#""records":12"#))
                #expect(try await BallastProcess.run(["evidence", "verify", "--digest", pinned], environment: environment).status == 0)
                let badDigest = try await BallastProcess.run(["evidence", "verify", "--digest", "nonsense"], environment: environment)
                #expect(badDigest.status == 2)

                let jsonl = try await BallastProcess.run(["evidence", "export", "--format", "jsonl"], environment: environment)
                #expect(jsonl.status == 0)
                let lines = jsonl.stdout.split(separator: "\n")
                #expect(lines.count == 12)
                #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
                let csv = try await BallastProcess.run(["evidence", "export", "--format", "csv"], environment: environment)
                #expect(csv.stdout.split(separator: "\n").count == 13)
                #expect(csv.stdout.hasPrefix("id,seq,occurredAt"))
                let none = try await BallastProcess.run(
                    ["evidence", "export", "--since", "2999-01-01T00:00:00Z"], environment: environment)
                #expect(none.stdout.isEmpty)

                try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    try await database.read { sql in
                        if database.dialect == .sqlite {
                            try await sql.raw("DROP TRIGGER evidence_records_no_update").run()
                        } else {
                            try await sql.raw("DROP TRIGGER evidence_records_no_update_delete ON evidence_records").run()
                        }
                        try await sql.raw("UPDATE evidence_records SET entity_id = 'listing-x' WHERE seq = 7").run()
                    }
                }
                let tampered = try await BallastProcess.run(["evidence", "verify"], environment: environment)
                #expect(tampered.status == 1)
                #expect(tampered.stdout.contains(#""valid":false"#))
                #expect(tampered.stdout.contains(ids[6]))
                #expect(tampered.stderr.contains("seq 7"))
            }
        }
    }
}
