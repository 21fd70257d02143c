/// An optional field that is written as `null` when absent, instead of being left out (the API shows every
/// documented field). Synthesized `Encodable` calls this wrapper's `encode(to:)`, which writes `null` for nil.
@propertyWrapper
struct Null<Value: Encodable & Sendable>: Encodable, Sendable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue { try container.encode(wrappedValue) } else { try container.encodeNil() }
    }
}
