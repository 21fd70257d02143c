@testable import BallastCore
import Foundation
import Testing

/// The hand-written reader of request bodies never disagrees with the Foundation decoder: on generated texts, valid
/// and broken, whatever it reads is exactly what the decoder reads (strings compared scalar by scalar, not by
/// Swift's canonical equality), and what it gives up on goes to the decoder. It must also really read the common
/// shapes itself, or it would be a slower way of calling the decoder.
@Suite struct JSONReaderTests {
    /// Keys and string pieces with every character a reader can get wrong.
    private static let pieces: [String] = [
        "a", "amount", "walletId", "\"", "\\", "/", "\u{7F}", "é", "e\u{301}", "\u{2028}", "\u{FEFF}", "😀", "{", "}", ":",
        ",", "[", "]", " ", "\u{0}", "\u{8}", "\u{C}", "\r", "\u{1F}", "\t", "\n", "ß", "中", "\u{10FFFF}",
    ]

    private func foundation(_ text: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(text))
    }

    private func fast(_ text: [UInt8]) -> JSONValue? {
        text.withUnsafeBytes { JSONReader.read($0) }
    }

    /// Equal down to each string's scalars and each number's kind.
    private func same(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.number(let a), .number(let b)): return a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)): return Array(a.unicodeScalars) == Array(b.unicodeScalars)
        case (.array(let a), .array(let b)): return a.count == b.count && zip(a, b).allSatisfy { same($0, $1) }
        case (.object(let a), .object(let b)):
            guard a.count == b.count else { return false }
            let aKeys = a.keys.map { Array($0.unicodeScalars) }.sorted { $0.lexicographicallyPrecedes($1) { $0.value < $1.value } }
            let bKeys = b.keys.map { Array($0.unicodeScalars) }.sorted { $0.lexicographicallyPrecedes($1) { $0.value < $1.value } }
            return aKeys == bKeys && a.allSatisfy { key, value in
                b.first { Array($0.key.unicodeScalars) == Array(key.unicodeScalars) }.map { same(value, $0.value) } ?? false
            }
        default: return false
        }
    }

    /// Checks one text; answers whether the fast reader read it itself.
    @discardableResult
    private func check(_ text: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let expected = foundation(text)
        let quick = fast(text)
        if let quick {
            guard let expected else {
                Issue.record("read \(String(decoding: text, as: UTF8.self).debugDescription) that the decoder refuses", sourceLocation: sourceLocation)
                return true
            }
            #expect(same(quick, expected), "\(String(decoding: text, as: UTF8.self).debugDescription): \(quick) against \(expected)",
                    sourceLocation: sourceLocation)
        }
        let read = text.withUnsafeBytes { try? JSONValue.read($0) }
        #expect((read == nil) == (expected == nil), sourceLocation: sourceLocation)
        if let read, let expected {
            #expect(same(read, expected), sourceLocation: sourceLocation)
        }
        return quick != nil
    }

    private func blank(_ random: inout SplitMix64) -> String {
        ["", "", "", " ", "\n", "\t", "\r\n  "][random.below(7)]
    }

    private func stringText(_ random: inout SplitMix64) -> String {
        var text = "\""
        for _ in 0..<random.below(8) {
            let piece = random.below(3) == 0 ? Self.pieces[random.below(Self.pieces.count)]
                : String(UnicodeScalar(UInt8(0x20 + random.below(0x5F))))
            for scalar in piece.unicodeScalars {
                let mustEscape = scalar == "\"" || scalar == "\\" || scalar.value < 0x20
                switch (mustEscape, random.below(4)) {
                case (_, 0):
                    // As \u escapes: a surrogate pair beyond the basic plane, lower or upper case hex.
                    for unit in String(scalar).utf16 {
                        let hex = String(unit, radix: 16)
                        let padded = String(repeating: "0", count: 4 - hex.count) + hex
                        text += "\\u" + (random.below(2) == 0 ? padded : padded.uppercased())
                    }
                case (true, _):
                    switch scalar {
                    case "\"": text += "\\\""
                    case "\\": text += "\\\\"
                    case "\n": text += "\\n"
                    case "\t": text += "\\t"
                    case "\r": text += "\\r"
                    case "\u{8}": text += "\\b"
                    case "\u{C}": text += "\\f"
                    default: text += String(format: "\\u%04x", scalar.value)
                    }
                default:
                    text += scalar == "/" && random.below(2) == 0 ? "\\/" : String(scalar)
                }
            }
        }
        return text + "\""
    }

    private func numberText(_ random: inout SplitMix64) -> String {
        switch random.below(9) {
        case 0: return ["0", "-0", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
                        "-9223372036854775809", "18446744073709551616", "100000000000000000000000"][random.below(8)]
        case 1: return ["10.0", "1.5", "-0.0", "1e2", "1E+2", "2.5e-3", "1e400", "0.1", "-1.25"][random.below(9)]
        case 2, 3: return String(Int64.random(in: -1_000...1_000, using: &random))
        default: return String(Int64.random(in: .min ... .max, using: &random))
        }
    }

    private func valueText(_ random: inout SplitMix64, depth: Int) -> String {
        switch depth > 3 ? random.below(4) : random.below(7) {
        case 0: return stringText(&random)
        case 1: return numberText(&random)
        case 2: return ["true", "false", "null"][random.below(3)]
        case 3: return String(Int64.random(in: 0...100_000, using: &random))
        case 4:
            let values = (0..<random.below(4)).map { _ in blank(&random) + valueText(&random, depth: depth + 1) + blank(&random) }
            return "[" + blank(&random) + values.joined(separator: ",") + "]"
        default:
            let fields = (0..<random.below(5)).map { _ in
                blank(&random) + stringText(&random) + blank(&random) + ":" + blank(&random) + valueText(&random, depth: depth + 1)
                    + blank(&random)
            }
            return "{" + blank(&random) + fields.joined(separator: ",") + "}"
        }
    }

    @Test func theReaderAgreesWithTheDecoderOnGeneratedTexts() {
        var random = SplitMix64(seed: 0x6A73_6F6E)
        var valid = 0
        var readFast = 0
        for _ in 0..<4_000 {
            let text = Array((blank(&random) + valueText(&random, depth: 0) + blank(&random)).utf8)
            if foundation(text) != nil { valid += 1 }
            if check(text) { readFast += 1 }
        }
        // Most generated texts are valid, and the reader reads most of those itself.
        #expect(valid > 3_000)
        #expect(readFast > valid / 2, "read \(readFast) of \(valid) valid texts")
    }

    @Test func theReaderAgreesWithTheDecoderOnBrokenTexts() {
        var random = SplitMix64(seed: 0x6272_6F6B)
        let significant = Array("{}[]\":,\\-.eE0123456789tfnu ".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xC0, 0xE2, 0xF0, 0xFF]
        var refused = 0
        for _ in 0..<4_000 {
            var text = Array(valueText(&random, depth: 0).utf8)
            for _ in 0...random.below(2) where !text.isEmpty {
                let at = random.below(text.count)
                switch random.below(4) {
                case 0: text.remove(at: at)
                case 1: text.insert(significant[random.below(significant.count)], at: at)
                case 2: text[at] = significant[random.below(significant.count)]
                default: text.removeLast(random.below(text.count) + 1)
                }
            }
            if foundation(text) == nil { refused += 1 }
            check(text)
        }
        #expect(refused > 1_000, "only \(refused) broken texts were refused")
    }

    @Test(arguments: [
        "0", "-0", "01", "-01", "1.", ".5", "+1", "-", "--1", "1.0", "10.0", "1e2", "-9223372036854775808",
        "9223372036854775807", "9223372036854775808", "-9223372036854775809", "NaN", "Infinity", "tru", "truex", "nul",
        "null ", " [ ] ", "[1,]", "[,1]", "{\"a\":1,}", "{\"a\":1 \"b\":2}", "{\"a\":1,\"a\":2}", "{\"é\":1,\"e\u{301}\":2}",
        "{a:1}", "{'a':1}", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"\\ud83d\\ude00\"", "\"\\u0000\"",
        "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"a\tb\"", "\"\u{7F}\"", "\"\u{FEFF}\"", "\u{FEFF}{}", "{} {}", "[] x",
        "\"unterminated", "\"\\", "{\"a\"", "{\"a\":", "[[[[[[]]]]]]",
        String(repeating: "[", count: 70) + String(repeating: "]", count: 70),
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
        "{\"walletId\":\"0b3c9a4e-6f1d-4c2e-9a7b-5d8e1f2a3b4c\",\"items\":[{\"productId\":\"x\",\"quantity\":1}]}",
    ])
    func theReaderAgreesWithTheDecoderOnEdgeCases(_ text: String) {
        check(Array(text.utf8))
    }

    @Test func bytesThatAreNotUTF8AreTheDecodersToJudge() {
        for text: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22],
                              [0xFE, 0xFF, 0x00, 0x7B, 0x00, 0x7D], [0x7B, 0x00, 0x7D, 0x00], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]] {
            check(text)
            #expect(fast(text) == nil)
        }
    }

    /// The shapes the API's bodies have are read by the fast reader, not handed on.
    @Test func theCommonShapesAreReadFast() {
        for text in [
            #"{"amount":1}"#, #"{"amount":250,"reference":"order 12 \u00e9\n"}"#,
            #"{"walletId":"0b3c9a4e-6f1d-4c2e-9a7b-5d8e1f2a3b4c","items":[{"productId":"x","quantity":1}],"destination":{"country":"US","postalCode":"94107"}}"#,
            #"[true,false,null,-12,"😀"]"#,
        ] {
            #expect(fast(Array(text.utf8)) != nil, "\(text)")
            check(Array(text.utf8))
        }
    }
}
