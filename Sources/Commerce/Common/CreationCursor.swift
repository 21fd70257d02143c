import DomainValues
import SQLKit

/// Position in a list ordered by creation time, then id (`MICROS_ID` in the API): products and listings page
/// with it, oldest first.
public struct CreationCursor<Tag>: Sendable, Equatable, CustomStringConvertible {
    public let createdAtMicros: Int64
    public let id: TypedID<Tag>

    public init(createdAtMicros: Int64, id: TypedID<Tag>) {
        self.createdAtMicros = createdAtMicros
        self.id = id
    }

    /// The text form a list returned; `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "_", maxSplits: 1)
        guard parts.count == 2, let micros = Int64(parts[0]), let id = TypedID<Tag>(String(parts[1])) else { return nil }
        self.init(createdAtMicros: micros, id: id)
    }

    public var description: String { "\(createdAtMicros)_\(id)" }

    /// ` AND (…)`: the rows after this position, for a query ordered by `created_at_micros, id`.
    var condition: SQLQueryString {
        """
         AND (created_at_micros > \(bind: createdAtMicros)
              OR (created_at_micros = \(bind: createdAtMicros) AND id > \(bind: id.description)))
        """
    }
}

public typealias ProductCursor = CreationCursor<ProductTag>
public typealias ListingCursor = CreationCursor<ListingTag>
