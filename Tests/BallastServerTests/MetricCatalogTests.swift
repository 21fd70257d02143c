import BallastTestSupport
import Foundation
import Commerce
import Telemetry
import Testing

/// `/metrics` as operators' tools read it: every family has the help text and type of the catalog, carries the
/// catalog's labels in its order, and the ones operators alert on exist from start-up; every metric the shipped alert
/// rules and dashboard use is one the server exposes.
@Suite("Metric catalog")
struct MetricCatalogTests {
    /// Families whose labels come from requests (route, status): they appear with their first request.
    static let appearOnUse: Set<String> = [
        "http_requests_total", "http_request_duration_seconds", "http_internal_errors_total", "constraint_violations_total",
        // Reported only by a server that writes its log to a sink of its own (`ballast serve`).
        "log_lines_dropped_total",
    ]

    /// One exposition, family by family: its HELP and TYPE lines and the label names of each sample.
    struct Family {
        var help: String?
        var type: String?
        var labelNames: Set<[String]> = []
    }

    static func parse(_ text: String) -> [String: Family] {
        var families: [String: Family] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst("# HELP ".count)
                let name = String(rest.prefix { $0 != " " })
                families[name, default: Family()].help = String(rest.dropFirst(name.count + 1))
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                families[String(parts[2]), default: Family()].type = String(parts[3])
            } else if !line.hasPrefix("#") {
                let name = String(line.prefix { $0 != "{" && $0 != " " })
                var family = name
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && families[name] == nil {
                    let base = String(name.dropLast(suffix.count))
                    if families[base]?.type == "histogram" { family = base }
                }
                var labels: [String] = []
                if let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") {
                    // Label values here never hold `",` or `="` (routes, codes, names), so a plain split is enough.
                    for pair in line[line.index(after: open)..<close].components(separatedBy: "\",") where !pair.isEmpty {
                        let key = pair.prefix { $0 != "=" }
                        if key != "le" { labels.append(String(key)) }
                    }
                }
                families[family, default: Family()].labelNames.insert(labels)
            }
        }
        return families
    }

    @Test(arguments: TestStores.kinds)
    func everyFamilyHasItsHelpTypeAndLabelsAndExistsFromStartUp(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            // A few requests, so the request-labelled families appear too.
            _ = try await app.request(.get, "/health")
            _ = try await app.request(.get, "/api/products")
            // What a running server's background loops record.
            try await app.services.dispatcher.updateGauges()
            let text = try await app.request(.get, "/metrics").body
            let families = Self.parse(text)
            for (name, family) in families {
                let description = try #require(MetricCatalog.byName[name], "\(name) is exposed but not in the metric catalog")
                #expect(family.help == description.help, "\(name): HELP")
                #expect(family.type == description.kind.rawValue, "\(name): TYPE")
                #expect(family.labelNames == [description.labels], "\(name): labels \(family.labelNames) against \(description.labels)")
            }
            let missing = MetricCatalog.all.map(\.name).filter { families[$0] == nil && !Self.appearOnUse.contains($0) }
            #expect(missing.isEmpty, "not there at start-up: \(missing)")
            // Counters that exist from start-up are at zero until their first event.
            #expect(text.contains("notifications_total{channel=\"email\",outcome=\"dead\"} 0"))
            #expect(text.contains("shadow_write_failures_total{entity_type=\"listing\",operation=\"create\",failure_type=\"injected\"} 0"))
            #expect(text.contains("job_runs_total{job=\"ledger-invariant-auditor\",status=\"lease_lost\"} 0"))
            #expect(text.contains("ballast_info{version="))
        }
    }

    /// The names of the metrics a PromQL expression uses: what is left once strings, label matchers, ranges and
    /// grouping clauses are taken out, less function names (followed by `(`) and operators.
    static func metricNames(in expression: String) -> Set<String> {
        var text = expression
        for pattern in ["\"[^\"]*\"", "\\{[^}]*\\}", "\\[[^\\]]*\\]", "\\b(by|on|without|ignoring|group_left|group_right)\\s*\\([^)]*\\)"] {
            text = text.replacingOccurrences(of: pattern, with: " ", options: .regularExpression)
        }
        let operators: Set<String> = ["and", "or", "unless", "bool", "offset"]
        var names: Set<String> = []
        let identifier = try! NSRegularExpression(pattern: "[a-zA-Z_][a-zA-Z0-9_]*(?!\\s*\\()")
        for match in identifier.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
            let word = String(text[Range(match.range, in: text)!])
            // A word cut short by the look-ahead (the start of a function's name) is not followed by its own end.
            let end = Range(match.range, in: text)!.upperBound
            if end < text.endIndex, text[end].isLetter || text[end].isNumber || text[end] == "_" { continue }
            if !operators.contains(word) { names.insert(word) }
        }
        return names
    }

    static func familyName(_ metric: String) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where metric.hasSuffix(suffix) {
            let base = String(metric.dropLast(suffix.count))
            if MetricCatalog.byName[base]?.kind == .histogram { return base }
        }
        return metric
    }

    static var repository: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    @Test
    func theAlertRulesAndTheDashboardUseOnlyExposedMetrics() throws {
        let rules = try String(contentsOf: Self.repository.appendingPathComponent("deploy/prometheus/ballast-rules.yml"), encoding: .utf8)
        // Each expression runs from `expr:` to the rule's next key (`for:` or `labels:`).
        let expressions = rules.components(separatedBy: "expr:").dropFirst()
            .map { $0.components(separatedBy: "labels:")[0].components(separatedBy: "for:")[0] }
        #expect(expressions.count >= 15)
        var used: Set<String> = []
        for expression in expressions { used.formUnion(Self.metricNames(in: expression)) }
        let dashboard = try Data(contentsOf: Self.repository.appendingPathComponent("deploy/grafana/ballast.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: dashboard) as? [String: Any])
        var dashboardExpressions: [String] = []
        func collect(_ value: Any) {
            if let object = value as? [String: Any] {
                for (key, inner) in object {
                    if key == "expr", let text = inner as? String { dashboardExpressions.append(text) } else { collect(inner) }
                }
            } else if let array = value as? [Any] {
                array.forEach(collect)
            }
        }
        collect(json)
        #expect(dashboardExpressions.count >= 20)
        for expression in dashboardExpressions { used.formUnion(Self.metricNames(in: expression)) }
        let unknown = used.map(Self.familyName).filter { MetricCatalog.byName[$0] == nil }
        #expect(unknown.isEmpty, "used but not exposed: \(unknown.sorted())")
        #expect(used.contains("shadow_unexplained_discrepancies_total") && used.contains("db_pool_wait_seconds_bucket"))
    }
}
