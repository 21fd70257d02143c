import AsyncHTTPClient
import BallastCore
import BallastWire
import Foundation
import NIOCore
import NIOHTTP1

/// What the target answered to one request.
public struct Reply: Sendable {
    public let status: Int
    public let headers: [String: String]
    public let latencySeconds: Double
    /// The body as text (the Prometheus text of /metrics, or the JSON).
    public let text: String

    /// The body as a free-form JSON value, parsed when asked for: most answers are read as their wire type.
    public var json: JSONValue? { JSONValue.parse(Data(text.utf8)) }
    public var isSuccess: Bool { (200..<300).contains(status) }
    /// The `error.code` of an error answer.
    public var errorCode: String? { decode(ErrorBody.self)?.error.code }
    /// The body as the wire type `T`; nil when it is not one.
    public func decode<T: Decodable>(_ type: T.Type) -> T? { WireJSON.decode(type, from: Data(text.utf8)) }
    /// The body as the wire type `T`, or an error naming the field that is not what it should be.
    public func read<T: Decodable>(_ type: T.Type) throws -> T { try WireJSON.decoder.decode(type, from: Data(text.utf8)) }
    public var replayed: Bool { headers["idempotent-replayed"] == "true" }
}

/// The request could not be completed: the target did not answer (refused, reset, timed out).
public struct Unreachable: Error, CustomStringConvertible, Sendable {
    public let method: String
    public let path: String
    public let reason: String
    public var description: String { "\(method) \(path): no answer (\(reason))" }
}

/// The target answered something a step of the experiment cannot go on from (set-up or check).
public struct UnexpectedReply: Error, CustomStringConvertible, Sendable {
    public let step: String
    public let status: Int
    public let body: String
    public var description: String { "\(step): the target answered \(status) \(body.prefix(300))" }
}

/// A small JSON client of the Ballast API over HTTP/1.1 keep-alive connections.
public final class APIClient: Sendable {
    public let baseURL: String
    public let adminToken: String
    private let client: HTTPClient
    let timeout: TimeAmount

    /// - Parameters: connections: how many requests may be in flight at once (the workload's concurrency plus
    ///   the monitor's).
    public init(baseURL: String, adminToken: String, connections: Int, timeoutSeconds: Int64 = 10) {
        var trimmed = baseURL
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.baseURL = trimmed
        self.adminToken = adminToken
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(1, connections))
        configuration.timeout = .init(connect: .seconds(3))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        timeout = .seconds(timeoutSeconds)
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    /// Sends one request. `token` nil sends the admin token; `.some(nil)` none. Throws ``Unreachable`` when
    /// no answer came.
    public func send(
        _ method: HTTPMethod, _ path: String, token: String?? = nil, body: JSONValue? = nil,
        headers extra: [String: String] = [:], timeout: TimeAmount? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let bearer = token ?? adminToken { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.text))
        }
        for (name, value) in extra { request.headers.add(name: name, value: value) }
        let started = ContinuousClock.now
        do {
            let response = try await client.execute(request, timeout: timeout ?? self.timeout)
            let buffer = try await response.body.collect(upTo: 16 << 20)
            let elapsed = ContinuousClock.now - started
            var headers: [String: String] = [:]
            for header in response.headers { headers[header.name.lowercased()] = header.value }
            let data = Data(buffer.readableBytesView)
            return Reply(status: Int(response.status.code), headers: headers,
                         latencySeconds: elapsed.inSeconds, text: String(decoding: data, as: UTF8.self))
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw Unreachable(method: method.rawValue, path: path, reason: String(describing: error))
        }
    }

    /// Sends a request that must succeed with `expected` (or any 2xx when nil) and returns its JSON.
    public func expect(
        _ step: String, _ method: HTTPMethod, _ path: String, token: String?? = nil, body: JSONValue? = nil,
        status expected: Int? = nil, headers: [String: String] = [:]
    ) async throws -> JSONValue {
        let reply = try await send(method, path, token: token, body: body, headers: headers)
        guard expected.map({ $0 == reply.status }) ?? reply.isSuccess, let json = reply.json else {
            throw UnexpectedReply(step: step, status: reply.status, body: reply.json?.text ?? "")
        }
        return json
    }

    /// Sends a request that must succeed with `expected` (or any 2xx when nil) and answer a `T` (a wire type).
    public func expect<T: Decodable>(
        _ step: String, _ method: HTTPMethod, _ path: String, as type: T.Type, token: String?? = nil, body: JSONValue? = nil,
        status expected: Int? = nil, headers: [String: String] = [:]
    ) async throws -> T {
        let reply = try await send(method, path, token: token, body: body, headers: headers)
        guard expected.map({ $0 == reply.status }) ?? reply.isSuccess else {
            throw UnexpectedReply(step: step, status: reply.status, body: reply.text)
        }
        do {
            return try reply.read(type)
        } catch {
            throw UnexpectedReply(step: "\(step): the answer is not a \(T.self) (\(WireJSON.describe(error)))", status: reply.status,
                                  body: reply.text)
        }
    }

    /// Every item of a list endpoint, as the wire type `Item`, following `nextCursor` (at most `maxPages` pages of
    /// 200). `stop` ends the walk after the first page holding an item it accepts (newest-first lists reaching
    /// items older than what the caller looks for).
    public func all<Item: Codable & Sendable & Equatable>(
        _ step: String, _ path: String, of type: Item.Type, token: String?? = nil, maxPages: Int = 10_000,
        stop: (@Sendable (Item) -> Bool)? = nil
    ) async throws -> [Item] {
        var items: [Item] = []
        var cursor: String?
        let separator = path.contains("?") ? "&" : "?"
        for _ in 0..<maxPages {
            var pagePath = path + separator + "limit=200"
            if let cursor { pagePath += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let page = try await expect(step, .GET, pagePath, as: Page<Item>.self, token: token)
            items += page.items
            if let stop, page.items.contains(where: stop) { return items }
            guard let next = page.nextCursor else { return items }
            cursor = next
        }
        return items
    }

    /// Runs a job now (`POST /api/admin/jobs/NAME/trigger`) and answers its result, waiting out a run already in
    /// progress anywhere (409 job_running) for up to two minutes.
    public func triggerJob(_ name: String, query: String = "") async throws -> JobRunBody {
        let step = "trigger the job \(name)"
        for _ in 0..<120 {
            let reply = try await send(.POST, "/api/admin/jobs/\(name)/trigger" + query, timeout: .minutes(10))
            if reply.errorCode == "job_running" {
                try await Task.sleep(for: .seconds(1))
                continue
            }
            // A run that failed answers 200 with status "failed": its result is not one to check against.
            guard reply.isSuccess, let run = reply.decode(JobRunBody.self), run.status == "succeeded" else {
                throw UnexpectedReply(step: step, status: reply.status, body: reply.text)
            }
            return run
        }
        throw UnexpectedReply(step: step, status: 409, body: "still running elsewhere after two minutes")
    }

    /// The target's Prometheus text, summed by metric name over the label sets that contain every `labels` pair.
    public func metricSum(_ name: String, labels: [String: String] = [:]) async throws -> Double {
        Self.sum(try await metrics(), name, labels: labels)
    }

    /// The target's Prometheus text (`GET /metrics`), for reading several sums of one moment.
    func metrics() async throws -> String {
        let reply = try await send(.GET, "/metrics", token: .some(nil))
        guard reply.status == 200 else { throw UnexpectedReply(step: "read /metrics", status: reply.status, body: "") }
        return reply.text
    }

    /// Sums the samples of `name` in Prometheus text whose labels include every pair of `labels`.
    static func sum(_ text: String, _ name: String, labels: [String: String]) -> Double {
        var total = 0.0
        for line in text.split(separator: "\n") where line.hasPrefix(name) {
            let rest = line.dropFirst(name.count)
            var labelText = Substring("")
            var valueText = rest
            if rest.first == "{" {
                guard let close = rest.firstIndex(of: "}") else { continue }
                labelText = rest[rest.index(after: rest.startIndex)..<close]
                valueText = rest[rest.index(after: close)...]
            } else if rest.first != " " {
                continue  // another metric whose name starts with this one
            }
            let matches = labels.allSatisfy { key, value in labelText.contains("\(key)=\"\(value)\"") }
            guard matches, let value = Double(valueText.trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "")
            else { continue }
            total += value
        }
        return total
    }
}

/// The target's clock as seen from here. Times the API writes (createdAt, expiresAt) and its `since=` filters are
/// the target's, and the machine running the experiment may be any amount ahead or behind: every comparison with
/// them goes through this offset, measured from the `Date` header of one answer.
public struct TargetClock: Sendable {
    /// Target time minus local time, in seconds.
    public let offset: TimeInterval

    public init(offset: TimeInterval = 0) { self.offset = offset }

    /// From an HTTP `Date` header (whole seconds, so the target's time was up to a second past it) of a request
    /// sent at `sentAt` that took `latencySeconds`, taken as the middle of the request; no offset without a
    /// header that parses.
    public init(dateHeader: String?, sentAt: Date, latencySeconds: Double) {
        guard let dateHeader, let date = Self.httpDate.date(from: dateHeader) else {
            self.init()
            return
        }
        self.init(offset: date.addingTimeInterval(0.5).timeIntervalSince(sentAt.addingTimeInterval(latencySeconds / 2)))
    }

    init(_ reply: Reply, sentAt: Date) {
        self.init(dateHeader: reply.headers["date"], sentAt: sentAt, latencySeconds: reply.latencySeconds)
    }

    /// Now, on the target's clock.
    public var now: Date { Date().addingTimeInterval(offset) }

    private static var httpDate: DateFormatter {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter
    }
}

/// Times in the API's query parameters.
enum APITime {
    /// Whole seconds, rounded down: a `since=` parameter that includes `date`.
    static func since(_ date: Date) -> String {
        Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down)).formatted(.iso8601)
    }
}

