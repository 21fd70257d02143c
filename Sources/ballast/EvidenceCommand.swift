import ArgumentParser
import BallastConfig
import BallastCore
import BallastServer
import BallastWire
import Commerce
import Evidence
import EvidenceStore
import Foundation
import Logging
import Storage

struct EvidenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evidence",
        abstract: "Verify, pin and export the tamper-evident evidence log.",
        subcommands: [Verify.self, Digest.self, Export.self])

    /// Opens the primary store, waits for it (30 s), checks its schema is current, and runs `body`.
    static func withLog<R: Sendable>(
        _ store: StoreOptions, _ body: @escaping @Sendable (EvidenceLog) async throws -> R
    ) async throws -> R {
        let config = try CommandSupport.loadConfig(overrides: store.overrides)
        let logger = CommandSupport.bootstrapLogging(config, sink: .standardError)
        do {
            return try await Database.withRunning(config.databaseURL, poolSize: 2, logger: logger) { database in
                try await database.waitUntilReachable(timeout: .seconds(30))
                guard try await Migrator(database: database, logger: logger).pendingVersions().isEmpty else {
                    throw ValidationError("the schema is behind this build: run `ballast migrate` first")
                }
                return try await body(EvidenceLog(database: database))
            }
        } catch let error as ExitCode {
            throw error
        } catch {
            CommandSupport.printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain; exit 0 when it is intact, 1 when not.",
            discussion: """
                Prints {"records", "valid", "firstInvalidId", "firstInvalidSeq", "failure", "headSeq", "headHash"}. \
                With --digest SEQ:HASH (from `ballast evidence digest`, kept outside the database) it also proves \
                that nothing up to that record was rewritten since the digest was taken.
                """)

        @Option(help: "A digest SEQ:HASH printed earlier by `ballast evidence digest`.")
        var digest: String?

        @OptionGroup var store: StoreOptions

        func run() async throws {
            var pinned: EvidenceDigest?
            if let digest {
                guard let parsed = EvidenceDigest(digest) else {
                    CommandSupport.printError("error: --digest must be SEQ:HASH (a positive integer and 64 lower-case hex digits)")
                    throw ExitCode(2)
                }
                pinned = parsed
            }
            let digestToCheck = pinned
            let result = try await EvidenceCommand.withLog(store) { log in try await log.verify(digest: digestToCheck) }
            print(try CommandSupport.json(VerificationBody(result)))
            if !result.valid {
                CommandSupport.printError("evidence chain INVALID at seq \(result.firstInvalidSeq ?? 0) (record \(result.firstInvalidId ?? "?")): \(result.failure ?? "")")
                throw ExitCode(1)
            }
        }
    }

    struct Digest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the chain head as SEQ:HASH, to keep outside the database.")

        @OptionGroup var store: StoreOptions

        func run() async throws {
            let head = try await EvidenceCommand.withLog(store) { log in try await log.head() }
            guard let head else {
                CommandSupport.printError("error: the evidence log is empty")
                throw ExitCode(1)
            }
            print(head.description)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write evidence records to stdout in chain order, as JSON lines or CSV.")

        enum Format: String, ExpressibleByArgument, CaseIterable {
            case jsonl, csv
        }

        @Option(help: "jsonl or csv.")
        var format: Format = .jsonl

        @Option(help: "Only records that occurred at or after this RFC 3339 time, e.g. 2026-01-31T00:00:00Z.")
        var since: String?

        @OptionGroup var store: StoreOptions

        func run() async throws {
            var sinceMicros: Int64?
            if let since {
                guard let date = try? Date(since, strategy: .iso8601) else {
                    CommandSupport.printError("error: --since must be an RFC 3339 time such as 2026-01-31T00:00:00Z")
                    throw ExitCode(2)
                }
                sinceMicros = StoredTime.micros(from: date)
            }
            let filter = EvidenceLog.Filter(sinceMicros: sinceMicros)
            let format = self.format
            let count = try await EvidenceCommand.withLog(store) { log in
                if format == .csv { print(EvidenceCSV.header) }
                var afterSeq: Int64 = 0
                var written = 0
                while true {
                    let page = try await log.list(filter, afterSeq: afterSeq, limit: 1000)
                    for record in page.records {
                        print(format == .csv ? EvidenceCSV.row(record) : try CommandSupport.json(EvidenceBody(record)))
                    }
                    written += page.records.count
                    guard let next = page.nextSeq else { break }
                    afterSeq = next
                }
                return written
            }
            CommandSupport.printError("exported \(count) evidence records")
        }
    }
}

/// RFC 4180 CSV of evidence records (details as its canonical JSON text).
enum EvidenceCSV {
    static let header = "id,seq,occurredAt,controlId,category,eventType,eventOutcome,entityType,entityId,requestId,details,contentHash,previousHash"

    static func row(_ record: EvidenceRecord) -> String {
        [
            record.id.lowercasedString, String(record.seq), EvidenceTime.rfc3339(micros: record.occurredAtMicros),
            record.controlId, record.category, record.eventType, record.eventOutcome, record.entityType ?? "",
            record.entityId ?? "", record.requestId ?? "", record.details, record.contentHash, record.previousHash,
        ].map(field).joined(separator: ",")
    }

    static func field(_ value: String) -> String {
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
