import BallastConfig
import BallastCore
import ChaosKit
import DomainValues

/// `PUT /api/admin/chaos`: `{enabled?, failRate?, scope?, seed?, durationSeconds?, latencyMilliseconds?, reason?}`,
/// at least one setting. The scopes offered are the ones this environment allows (`reads` only in development and
/// test), so the OpenAPI document of a staging server does not offer what it would refuse.
public struct ChaosUpdateRequest: Sendable {
    public static let enabled = Field.optional("enabled", .boolean)
    public static let failRate = Field.optional("failRate", .number(0...1), summary: "probability that a call at an in-scope point fails")
    public static let seed = Field.optional("seed", .text(.printable(max: 256)), summary: "fixes which calls fail")
    public static let durationSeconds = Field.optional(
        "durationSeconds", .integer(1...31_536_000), summary: "a time box from now; null removes it")
    public static let latencyMilliseconds = Field.optional(
        "latencyMilliseconds", .integer(0...60_000), summary: "when > 0 a fault is a delay of this long instead of an error")
    public static let reason = Field.optional("reason", .text(.printable(max: 500)), summary: "kept in the evidence record")

    public static func scope(for environment: AppEnvironment) -> Field {
        Field.optional("scope", .choice(ChaosScope.allCases.filter { $0.isAllowed(in: environment) }.map(\.rawValue)))
    }

    public static func shape(for environment: AppEnvironment) -> ObjectShape {
        let settings = [enabled, failRate, scope(for: environment), seed, durationSeconds, latencyMilliseconds]
        return ObjectShape(settings + [reason], atLeastOneOf: settings.map(\.name))
    }

    public let update: ChaosUpdate

    public init(_ body: JSONValue, environment: AppEnvironment) throws {
        let input = try Self.shape(for: environment).validate(body)
        var update = ChaosUpdate()
        update.enabled = try input.optionalBool(Self.enabled)
        update.failRate = try input.optionalNumber(Self.failRate)
        update.scope = try input.choice(Self.scope(for: environment), as: ChaosScope.self)
        update.seed = try input.optionalText(Self.seed)
        if input.contains(Self.durationSeconds) {
            update.durationSeconds = .some(try input.optionalInteger(Self.durationSeconds).map { Int($0) })
        }
        update.latencyMilliseconds = try input.optionalInteger(Self.latencyMilliseconds).map { Int($0) }
        update.reason = try input.optionalText(Self.reason)
        self.update = update
    }
}
