import AsyncHTTPClient

/// The HTTP client of every call to a peer (the shipping provider, the notification webhook). Its own tracing is off:
/// the call's span is opened by `Traces` with the peer's host only (a webhook's path or query may hold its secret),
/// and the request carries exactly one `traceparent`, the one the caller sets.
public enum PeerClient {
    public static let shared: HTTPClient = {
        var configuration = HTTPClient.Configuration.singletonConfiguration
        configuration.tracing.tracer = nil
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()
}
