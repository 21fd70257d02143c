@testable import BallastServer
import BallastWire
import Foundation
import Testing

/// The answers written by hand are byte for byte what the server's encoder writes for the same values: generated
/// values with every awkward character a string can hold (quotes, backslashes, slashes, every control character,
/// non-ASCII, emoji, line separators), both ends of the integers, times before 1970 and after 9999 ms precision.
@Suite struct HandWrittenJSONTests {
    private static let awkward: [String] = [
        "\"", "\\", "/", "\u{7F}", "é", "\u{2028}", "\u{FEFF}", "😀", "e\u{301}", "{", "}", ":", ",", "null", " ",
    ] + (0..<0x20).map { String(UnicodeScalar(UInt8($0))) }

    private func text(_ random: inout SplitMix64) -> String {
        var text = ""
        for _ in 0..<Int.random(in: 0...12, using: &random) {
            if Bool.random(using: &random) {
                text += Self.awkward.randomElement(using: &random)!
            } else {
                text.unicodeScalars.append(UnicodeScalar(UInt8.random(in: 0x20...0x7E, using: &random)))
            }
        }
        return text
    }

    private func integer(_ random: inout SplitMix64) -> Int64 {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: [Int64.min, Int64.max, 0, -1, 1].randomElement(using: &random)!
        case 1: Int64.random(in: -1_000...1_000, using: &random)
        default: Int64.random(in: .min ... .max, using: &random)
        }
    }

    private func time(_ random: inout SplitMix64) -> Date {
        let millis = Int64.random(in: -62_000_000_000_000...250_000_000_000_000, using: &random)
        return Date(timeIntervalSince1970: Double(millis) / 1_000 + Double.random(in: 0..<0.001, using: &random))
    }

    private func expectSame(_ value: some HandWrittenJSON, _ note: String) throws {
        let encoded = String(decoding: try JSONResponse.encoder.encode(value), as: UTF8.self)
        let written = String(decoding: value.jsonBytes, as: UTF8.self)
        #expect(written == encoded, "\(note)")
        #expect(try CommandHTTP.render(value) == encoded, "\(note)")
    }

    @Test func everyHandWrittenAnswerMatchesTheEncoder() throws {
        var random = SplitMix64(seed: 0xBA11_A57)
        for round in 0..<2_000 {
            let user = UserBody(id: text(&random), name: text(&random), role: text(&random), createdAt: time(&random))
            let wallet = WalletBody(id: text(&random), ownerId: text(&random), currency: text(&random),
                                    balance: integer(&random), createdAt: time(&random))
            let entry = LedgerEntryBody(id: text(&random), kind: text(&random), amount: integer(&random),
                                        balanceAfter: integer(&random),
                                        reference: Bool.random(using: &random) ? text(&random) : nil, createdAt: time(&random))
            try expectSame(user, "user, round \(round)")
            try expectSame(wallet, "wallet, round \(round)")
            try expectSame(entry, "ledger entry, round \(round)")
            try expectSame(MovementBody(wallet: wallet, transaction: entry), "movement, round \(round)")
        }
    }
}
