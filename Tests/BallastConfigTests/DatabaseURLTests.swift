import BallastConfig
import Testing

@Suite("Database URLs", .timeLimit(.minutes(10)))
struct DatabaseURLTests {
    @Test func sqliteForms() {
        #expect(DatabaseURL.parse("sqlite:./data/ballast.sqlite") == .sqliteFile(path: "./data/ballast.sqlite"))
        #expect(DatabaseURL.parse("sqlite:/var/lib/ballast.db") == .sqliteFile(path: "/var/lib/ballast.db"))
        #expect(DatabaseURL.parse("sqlite::memory:") == .sqliteMemory)
    }

    @Test func postgresForms() throws {
        let url = try #require(DatabaseURL.parse("postgresql://ballast:p%40ss@127.0.0.1:5433/market"))
        guard case .postgres(let location) = url else {
            Issue.record("not postgres")
            return
        }
        #expect(location.host == "127.0.0.1")
        #expect(location.port == 5433)
        #expect(location.username == "ballast")
        #expect(location.password == "p@ss")
        #expect(location.database == "market")
        #expect(location.tlsMode == .disable, "loopback defaults to no TLS")
        #expect(url.description == "postgres://ballast:***@127.0.0.1:5433/market?tlsmode=disable")
        #expect(!url.description.contains("p@ss"))
    }

    @Test func tlsModeDefaultsAndOverrides() {
        guard case .postgres(let remote)? = DatabaseURL.parse("postgres://u@db.example.test/x"),
              case .postgres(let required)? = DatabaseURL.parse("postgres://u@127.0.0.1/x?sslmode=require")
        else {
            Issue.record("did not parse")
            return
        }
        #expect(remote.tlsMode == .prefer)
        #expect(remote.port == 5432)
        #expect(required.tlsMode == .require)
    }

    @Test func unredactedRoundTrips() throws {
        let text = "postgres://user:s3cr%2Ft@localhost:5432/db?tlsmode=disable"
        guard case .postgres(let location)? = DatabaseURL.parse(text) else {
            Issue.record("did not parse")
            return
        }
        #expect(location.password == "s3cr/t")
        #expect(DatabaseURL.parse(location.unredacted) == .postgres(location))
    }
}
