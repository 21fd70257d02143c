/// The one text policy of the API (SPEC §3), for every text field, query parameter, cursor and header value that
/// reaches SQL: lengths are counted in Unicode scalar values (what both databases count, so a value the edge
/// accepts always fits the table's CHECK), control characters (U+0000–U+001F, U+007F) are refused with a 422 naming
/// the field, and limits apply to the text as sent. Printable text is stored without its leading and trailing blanks
/// (the characters of ``blankScalars``), so what is stored is never longer than what was checked. Both stores then
/// see the same text, so the same request gets the same answer on SQLite and on PostgreSQL (which cannot store
/// U+0000 at all).
///
/// ``pattern`` says the same thing as a regular expression for the OpenAPI document; a property test checks that
/// the two agree on generated text.
public struct TextRule: Sendable, Equatable {
    /// Which characters a text may hold.
    public enum Alphabet: Sendable, Equatable {
        /// Any printable Unicode text with at least one character that is not blank (see ``blankScalars``).
        case printable
        /// Only the characters of this ASCII set (SKUs, currency and country codes, keys).
        case ascii(ASCIISet)
        /// A fixed ASCII format (cursors, digests).
        case format(TextFormat)
    }

    public let minScalars: Int
    public let maxScalars: Int
    public let alphabet: Alphabet

    public init(minScalars: Int = 1, maxScalars: Int, alphabet: Alphabet = .printable) {
        precondition(minScalars >= 0 && minScalars <= maxScalars, "a text rule needs 0 ≤ min ≤ max")
        self.minScalars = minScalars
        self.maxScalars = maxScalars
        self.alphabet = alphabet
    }

    /// Printable text of 1 to `maxScalars` scalars.
    public static func printable(max maxScalars: Int) -> TextRule { TextRule(maxScalars: maxScalars) }

    /// Exactly `count` (or `min...max`) characters of `set`.
    public static func ascii(_ set: ASCIISet, _ scalars: ClosedRange<Int>) -> TextRule {
        TextRule(minScalars: scalars.lowerBound, maxScalars: scalars.upperBound, alphabet: .ascii(set))
    }

    /// The value to store (printable text without its leading and trailing blanks), or a 422 naming `field` and
    /// what is wrong with it.
    public func check(_ text: String, field: String) throws -> String {
        if let problem = problem(with: text) {
            throw AppError(.validationFailed, "\(field) \(problem)", details: ["field": .string(field)])
        }
        guard case .printable = alphabet else { return text }
        return Self.trimmingBlanks(text)
    }

    /// `text` without the blanks at its ends (a text the rule accepted keeps at least one character).
    static func trimmingBlanks(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !blankScalars.contains($0.value) }),
              let last = scalars.lastIndex(where: { !blankScalars.contains($0.value) })
        else { return text }
        if first == scalars.startIndex, scalars.index(after: last) == scalars.endIndex { return text }
        return String(scalars[first...last])
    }

    /// What is wrong with `text`, or nil when the rule accepts it.
    public func problem(with text: String) -> String? {
        var count = 0
        var visible = false
        for scalar in text.unicodeScalars {
            count += 1
            if count > maxScalars { return "must have at most \(maxScalars) characters" }
            switch alphabet {
            case .printable:
                if Self.isControl(scalar) {
                    return "must not contain control characters (U+\(Self.hex(scalar.value)) at position \(count))"
                }
                if !Self.blankScalars.contains(scalar.value) { visible = true }
            case .ascii(let set):
                guard set.contains(scalar) else { return "may contain only \(set.summary)" }
            case .format:
                break
            }
        }
        if case .format(let format) = alphabet, count >= minScalars, !format.matches(text) {
            return "must be \(format.summary)"
        }
        if count < minScalars {
            return minScalars == maxScalars
                ? "must have exactly \(minScalars) characters" : "must have at least \(minScalars) character(s)"
        }
        if case .printable = alphabet, count > 0, !visible { return "must not be blank" }
        return nil
    }

    /// C0 controls and DEL: the characters SPEC §3 refuses in text.
    @inline(__always)
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F
    }

    /// Characters that do not make a text visible on their own: the space separators, the line and paragraph
    /// separators and the byte-order mark. Written out (not a library's idea of white space) so the server and the
    /// document's pattern agree character for character.
    public static let blankScalars: Set<UInt32> = {
        var set: Set<UInt32> = [0x20, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF]
        for value in UInt32(0x2000)...0x200A { set.insert(value) }
        return set
    }()

    /// The rule as a regular expression in ECMA 262's reading, which JSON Schema uses: explicit classes and
    /// `\x`/`\u` escapes, `$` the end of the text. (Python's `re` also lets `$` match before a final newline,
    /// which the server refuses as a control character; a validator in that dialect is the looser one.)
    public var pattern: String {
        switch alphabet {
        case .printable:
            let allowed = #"[^\x00-\x1f\x7f]"#
            let visible = #"[^\x00-\x20\x7f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"#
            return "^\(allowed)*\(visible)\(allowed)*$"
        case .ascii(let set):
            return "^[\(set.regexClass)]{\(minScalars),\(maxScalars)}$"
        case .format(let format):
            return format.pattern
        }
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// A set of ASCII characters given as ranges, e.g. letters, digits, `-`, `_` and `.` for SKUs.
public struct ASCIISet: Sendable, Equatable {
    public let ranges: [ClosedRange<UInt8>]
    /// How error messages name the set.
    public let summary: String

    public init(_ ranges: [ClosedRange<UInt8>], summary: String) {
        precondition(ranges.allSatisfy { $0.upperBound < 0x80 }, "an ASCII set holds ASCII only")
        self.ranges = ranges
        self.summary = summary
    }

    @inline(__always)
    public func contains(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value < 0x80 else { return false }
        let byte = UInt8(scalar.value)
        return ranges.contains { $0.contains(byte) }
    }

    /// The body of a regex character class, every character escaped as `\xHH`.
    var regexClass: String {
        ranges.map { range in
            range.lowerBound == range.upperBound
                ? Self.escape(range.lowerBound) : "\(Self.escape(range.lowerBound))-\(Self.escape(range.upperBound))"
        }.joined()
    }

    static func escape(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return "\\x" + (digits.count == 1 ? "0" + digits : digits)
    }

    private static func byte(_ character: Character) -> UInt8 { character.asciiValue! }

    public static let upperCaseLetters = ASCIISet([byte("A")...byte("Z")], summary: "upper-case letters A-Z")
    public static let digits = ASCIISet([byte("0")...byte("9")], summary: "digits 0-9")
    /// Letters, digits, `-`, `_` and `.`.
    public static let identifier = ASCIISet(
        [byte("A")...byte("Z"), byte("a")...byte("z"), byte("0")...byte("9"), byte("-")...byte("."), byte("_")...byte("_")],
        summary: "letters, digits, '-', '_' and '.'")
    /// Every printable ASCII character but the space (header values such as Idempotency-Key).
    public static let visibleASCII = ASCIISet([0x21...0x7E], summary: "printable ASCII characters without spaces")
}

/// A fixed ASCII text format: its regular expression for the document and the same rule written as code.
public struct TextFormat: Sendable, Equatable {
    public let pattern: String
    /// How error messages name the format.
    public let summary: String
    let matches: @Sendable (String) -> Bool

    public static func == (lhs: TextFormat, rhs: TextFormat) -> Bool { lhs.pattern == rhs.pattern }

    /// A rule for text of this format, at most `maxScalars` long.
    public func rule(maxScalars: Int) -> TextRule { TextRule(minScalars: 1, maxScalars: maxScalars, alphabet: .format(self)) }

    static func isDigits(_ bytes: Substring.UTF8View, _ lengths: ClosedRange<Int>) -> Bool {
        lengths.contains(bytes.count) && bytes.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    static func isHex(_ byte: UInt8, upperCase: Bool) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (upperCase && byte >= 0x41 && byte <= 0x46)
    }

    public static let uuidPattern = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    /// A position in a list ordered by a number: 1 to 18 digits.
    public static let sequenceCursor = TextFormat(
        pattern: "^[0-9]{1,18}$", summary: "a cursor this list returned (digits)",
        matches: { isDigits(Substring($0).utf8, 1...18) })

    /// A position in a list ordered by time and id: `MICROS_UUID`.
    public static let timeCursor = TextFormat(
        pattern: "^[0-9]{1,18}_\(uuidPattern)$", summary: "a cursor this list returned (MICROS_ID)",
        matches: { text in
            let parts = text.split(separator: "_", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, isDigits(parts[0].utf8, 1...18) else { return false }
            let id = Array(parts[1].utf8)
            guard id.count == 36 else { return false }
            for (index, byte) in id.enumerated() {
                let dash = index == 8 || index == 13 || index == 18 || index == 23
                guard dash ? byte == UInt8(ascii: "-") : isHex(byte, upperCase: true) else { return false }
            }
            return true
        })

    /// An evidence chain digest `SEQ:HASH`: a positive sequence number and 64 lower-case hex digits.
    public static let evidenceDigest = TextFormat(
        pattern: "^[1-9][0-9]{0,17}:[0-9a-f]{64}$", summary: "SEQ:HASH (a positive integer and 64 lower-case hex digits)",
        matches: { text in
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, isDigits(parts[0].utf8, 1...18), parts[0].utf8.first != UInt8(ascii: "0"),
                  parts[1].utf8.count == 64, parts[1].utf8.allSatisfy({ isHex($0, upperCase: false) })
            else { return false }
            return true
        })
}
