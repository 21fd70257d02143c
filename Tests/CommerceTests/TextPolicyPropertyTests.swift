import BallastCore
@testable import DomainValues
import Foundation
@testable import Commerce
import PropertyBased
import Testing

/// Generators of hostile text: control characters, blanks of every kind, letters with piles of combining marks,
/// flags and other characters outside the BMP, mixed at random.
enum HostileText {
    static func scalar(_ value: UInt32) -> Unicode.Scalar { Unicode.Scalar(value)! }

    static let scalar = Gen<Unicode.Scalar>.frequency(
        (1, Gen.unicodeScalar(in: scalar(0x00)...scalar(0x1F))),
        (0.3, Gen.always(scalar(0x7F))),
        (4, Gen.unicodeScalar(in: scalar(0x20)...scalar(0x7E))),
        (1, Gen<Unicode.Scalar?>.element(of: blanks.map { scalar($0) }).map { $0! }),
        (1, Gen.unicodeScalar(in: scalar(0x300)...scalar(0x36F))),
        (1, Gen.unicodeScalar(in: scalar(0x80)...scalar(0xD7FF))),
        (1, Gen.unicodeScalar(in: scalar(0x1F1E6)...scalar(0x1F1FF))),
        (0.5, Gen.unicodeScalar(in: scalar(0xE000)...scalar(0x10FFFF))))

    static func text(_ lengths: ClosedRange<Int>) -> Generator<String, AnySequence<Any>> {
        scalar.array(of: lengths).map { scalars in
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars)
            return String(text)
        }.eraseToAny()
    }

    /// The blank characters, written out here independently of the server's list (this is the oracle).
    static let blanks: [UInt32] = [0x20, 0xA0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007,
                                   0x2008, 0x2009, 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]

    /// SPEC §3 as a test reads it: 1 to `max` scalars, none a control character, at least one not blank.
    static func isAcceptable(_ text: String, max: Int) -> Bool {
        let scalars = Array(text.unicodeScalars)
        return (1...max).contains(scalars.count)
            && !scalars.contains { $0.value < 0x20 || $0.value == 0x7F }
            && scalars.contains { !blanks.contains($0.value) }
    }

    /// Whether the whole of `text` matches `pattern` (ICU, as Foundation runs it).
    static func fullyMatches(_ pattern: String, _ text: String) throws -> Bool {
        let regex = try NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        guard let match = regex.firstMatch(in: text, range: range) else { return false }
        return match.range == range
    }
}

@Suite("Text policy, generated", .timeLimit(.minutes(10)))
struct TextPolicyPropertyTests {
    @Test func printableTextIsJudgedByScalarsControlsAndBlanks() async {
        let rule = TextRule.printable(max: 40)
        await propertyCheck(count: 3000, input: HostileText.text(0...48)) { text in
            let accepted = rule.problem(with: text) == nil
            #expect(accepted == HostileText.isAcceptable(text, max: 40), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test func theDocumentsPatternSaysWhatTheServerChecks() async throws {
        // Within the length limits, the OpenAPI pattern and the server's check agree on every generated text.
        let rule = TextRule.printable(max: 10_000)
        let pattern = rule.pattern
        await propertyCheck(count: 2000, input: HostileText.text(1...30)) { text in
            let matches = (try? HostileText.fullyMatches(pattern, text)) ?? false
            #expect(matches == (rule.problem(with: text) == nil), "\(text.unicodeScalars.map { String($0.value, radix: 16) })")
        }
    }

    @Test func asciiRulesAndTheirPatternsAgree() async throws {
        let rules = [TextRule.ascii(.identifier, 1...64), Currency.rule, IdempotencyStore.keyRule]
        let text = Gen<Unicode.Scalar>.frequency(
            (6, Gen.unicodeScalar(in: HostileText.scalar(0x21)...HostileText.scalar(0x7E))),
            (1, Gen.unicodeScalar(in: HostileText.scalar(0x00)...HostileText.scalar(0x20))),
            (1, Gen.unicodeScalar(in: HostileText.scalar(0x80)...HostileText.scalar(0x2FF)))
        ).array(of: 0...70).map { scalars in
            var text = String.UnicodeScalarView()
            text.append(contentsOf: scalars)
            return String(text)
        }
        for rule in rules {
            await propertyCheck(count: 1500, input: text) { text in
                let matches = (try? HostileText.fullyMatches(rule.pattern, text)) ?? false
                #expect(matches == (rule.problem(with: text) == nil), "\(rule.pattern): \(text.debugDescription)")
            }
        }
    }

    @Test func lengthsAreScalarsNotWhatAReaderSeesAsCharacters() throws {
        // The examples that broke the table's CHECK: 101 flags are 101 characters but 202 scalars; a letter with
        // 300 combining marks is one character and 301 scalars. Both are refused at the edge, naming the field.
        let rule = TextRule.printable(max: 200)
        let flags = String(repeating: "🇺🇸", count: 101)
        #expect(flags.count == 101)
        #expect(rule.problem(with: flags) != nil)
        #expect(rule.problem(with: String(repeating: "🇺🇸", count: 100)) == nil)
        let stacked = "a" + String(repeating: "\u{301}", count: 300)
        #expect(stacked.count == 1)
        #expect(rule.problem(with: stacked) != nil)
        #expect(throws: AppError.self) { try rule.check("title\u{0}", field: "title") }
        do {
            _ = try rule.check("a\u{0}b", field: "title")
        } catch let error as AppError {
            #expect(error.code == .validationFailed)
            #expect(error.details["field"] == "title")
        }
    }

    @Test func cursorAndDigestFormatsAgreeWithTheirPatterns() async {
        let formats = [TextFormat.sequenceCursor, TextFormat.timeCursor, TextFormat.evidenceDigest]
        let pieces = Gen<String>.oneOf(
            Gen.int64(in: -5...Int64.max).map { String($0) },
            Gen.always(UUID().uuidString), Gen.always(UUID().uuidString.lowercased()),
            Gen.always("_"), Gen.always(":"), Gen.always("0"), Gen.always(String(repeating: "a", count: 64)),
            HostileText.text(0...4))
        let text = pieces.array(of: 1...4).map { $0.joined() }
        for format in formats {
            await propertyCheck(count: 1500, input: text) { text in
                let matches = (try? HostileText.fullyMatches(format.pattern, text)) ?? false
                #expect(matches == format.matches(text), "\(format.pattern): \(text.debugDescription)")
            }
        }
        #expect(TextFormat.timeCursor.matches("1700000000000000_\(UUID().uuidString)"))
        #expect(TextFormat.evidenceDigest.matches("12:" + String(repeating: "ab", count: 32)))
        #expect(!TextFormat.evidenceDigest.matches("012:" + String(repeating: "ab", count: 32)))
        #expect(!TextFormat.evidenceDigest.matches("12:" + String(repeating: "ＡＢ", count: 32)), "full-width hex is not hex")
    }
}

@Suite("Request shapes, generated", .timeLimit(.minutes(10)))
struct RequestShapePropertyTests {
    @Test func integersOutsideTheirRangeOrNotIntegersAreRefusedNamingTheField() async {
        let values = Gen<JSONValue>.oneOf(
            Gen.int64().map { JSONValue.integer($0) },
            Gen.int64(in: -3...3).map { JSONValue.integer($0) },
            Gen.int64(in: 999_999_999_998...1_000_000_000_002).map { JSONValue.integer($0) },
            Gen.double(in: -1e20...1e20).map { JSONValue.number($0) },
            HostileText.text(0...5).map { JSONValue.string($0) },
            Gen.bool.map { JSONValue.bool($0) }, Gen.always(JSONValue.null))
        await propertyCheck(count: 3000, input: values) { value in
            let body: JSONValue = .object(["amount": value])
            do {
                let movement = try MovementRequest(body)
                guard case .integer(let number) = value else {
                    Issue.record("accepted a non-integer amount \(value)")
                    return
                }
                #expect((1...1_000_000_000_000).contains(number))
                #expect(movement.amount.minorUnits == number)
            } catch let error as AppError {
                #expect(error.code == .validationFailed)
                #expect(error.details["field"] == "amount")
                if case .integer(let number) = value { #expect(!(1...1_000_000_000_000).contains(number)) }
            } catch {
                Issue.record("an error that is not the API's: \(error)")
            }
        }
    }

    @Test func unknownFieldsAreRefusedByName() async {
        let names = HostileText.text(1...12)
        await propertyCheck(count: 1000, input: names) { name in
            let body: JSONValue = .object(["title": "Oak desk", "price": 100, name: true])
            let known = name == "title" || name == "price"
            do {
                _ = try NewListing(body)
                #expect(known, "accepted an unknown field \(name.debugDescription)")
            } catch let error as AppError {
                #expect(error.code == .validationFailed)
                if !known { #expect(error.details["field"] == .string(name)) }
            } catch {
                Issue.record("an error that is not the API's: \(error)")
            }
        }
    }

    @Test func ordersRefuseBadLinesWithThePathOfTheLine() throws {
        let wallet = UUID().uuidString
        let product = UUID().uuidString
        func refusal(_ body: JSONValue) -> String? {
            do {
                _ = try OrderRequest(body)
                return nil
            } catch let error as AppError {
                if case .string(let field)? = error.details["field"] { return field }
                return "?"
            } catch {
                return "not an AppError"
            }
        }
        let destination: JSONValue = ["country": "US", "postalCode": "94107"]
        #expect(refusal(["walletId": .string(wallet), "items": [], "destination": destination]) == "items")
        #expect(refusal(["walletId": .string(wallet), "items": [["productId": .string(product), "quantity": 0]],
                         "destination": destination]) == "items[0].quantity")
        #expect(refusal(["walletId": .string(wallet), "items": [["productId": .string(product), "quantity": 1, "x": 1]],
                         "destination": destination]) == "items[0].x")
        #expect(refusal(["walletId": .string(wallet), "items": [["productId": .string(product), "quantity": 1]],
                         "destination": ["country": "us", "postalCode": "1"]]) == "destination.country")
        #expect(refusal(["walletId": .string(wallet), "items": [["productId": .string(product), "quantity": 1]],
                         "destination": ["country": "US", "postalCode": "9\u{0}"]]) == "destination.postalCode")
        #expect(refusal(["walletId": .string(wallet), "items": [["productId": .string(product), "quantity": 1]],
                         "destination": destination]) == nil)
    }
}
