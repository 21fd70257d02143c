import DomainValues
/// Where an order goes: an ISO 3166-1 alpha-2 country code and a postal code.
public struct Destination: Sendable, Equatable {
    public let country: String
    public let postalCode: String

    public init(country: String, postalCode: String) {
        self.country = country
        self.postalCode = postalCode
    }

    public static let country = Field.required("country", .text(.ascii(.upperCaseLetters, 2...2)), summary: "ISO 3166-1 alpha-2")
    public static let postalCode = Field.required("postalCode", .text(.printable(max: 16)))
    public static let shape = ObjectShape([country, postalCode])

    /// Reads a checked `{country, postalCode}` object.
    public init(_ input: InputObject) throws {
        country = try input.text(Self.country)
        postalCode = try input.text(Self.postalCode)
    }
}

/// One line of what is shipped.
public struct ShippedItem: Sendable, Equatable {
    public let productId: ProductID
    public let quantity: Int64

    public init(productId: ProductID, quantity: Int64) {
        self.productId = productId
        self.quantity = quantity
    }
}

/// A shipping price in USD minor units and where it came from.
public struct ShippingQuote: Sendable, Equatable {
    public enum Source: String, Sendable, CaseIterable {
        /// The configured rate provider answered.
        case provider
        /// The fixed table, because no provider is configured or it failed.
        case fallback
    }

    public let amountMinor: Int64
    public let source: Source

    public init(amountMinor: Int64, source: Source) {
        self.amountMinor = amountMinor
        self.source = source
    }
}

/// Prices shipping for an order before its transaction starts (a slow provider must never hold row locks).
/// An implementation either answers a quote or throws an ``AppError`` (503 when the policy is to block).
public protocol ShippingRates: Sendable {
    func quote(destination: Destination, items: [ShippedItem]) async throws -> ShippingQuote
}

/// The fixed table used when no provider is configured or the provider fails: 500 to the US, 1500 elsewhere.
public struct FallbackShippingRates: ShippingRates {
    public static let domesticMinor: Int64 = 500
    public static let internationalMinor: Int64 = 1500

    public init() {}

    public static func amount(for destination: Destination) -> Int64 {
        destination.country == "US" ? domesticMinor : internationalMinor
    }

    public func quote(destination: Destination, items: [ShippedItem]) async throws -> ShippingQuote {
        ShippingQuote(amountMinor: Self.amount(for: destination), source: .fallback)
    }
}
