// Performance figures for Ballast. Not a test: nothing here asserts a timing; it prints what it measured.
//
//   swift run -c release ballast-bench                 fault checks, evidence append/verify (SQLite; PostgreSQL
//                                                      too with BALLAST_BENCH_POSTGRES_URL)
//   swift run -c release ballast-bench http-debits --url http://127.0.0.1:8080 --token T --wallets hot|spread
//                 [--concurrency 16] [--seconds 10]
//                                                      debits over HTTP against a running server (the HTTP
//                                                      budgets themselves are measured by Benchmarks/run, with wrk)
//   swift run -c release ballast-bench http-orders --url URL --token T --products flash|spread
//                 [--concurrency 64] [--orders 5000] [--seconds 10]
//                                                      orders over HTTP (a flash sale or spread)
//   swift run -c release ballast-bench http-listings --url URL --token T [--concurrency 16] [--seconds 10]
//   swift run -c release ballast-bench verifier --database-url PG --shadow-url PG [--rows 1000000] [--differ 100]
//                                                      listing creates over HTTP and the verifier over a large
//                                                      table (used by Benchmarks/listings.sh)
//
// BALLAST_BENCH_POSTGRES_URL must point at a server where the user may create databases; the benchmark creates
// and drops its own.
import BallastConfig
import Foundation

let arguments = Array(CommandLine.arguments.dropFirst())
let benchPostgres: DatabaseURL.PostgresLocation? = {
    guard let text = ProcessInfo.processInfo.environment["BALLAST_BENCH_POSTGRES_URL"],
          case .postgres(let server)? = DatabaseURL.parse(text) else { return nil }
    return server
}()

switch arguments.first {
case nil:
    try await runCoreFigures(postgresServer: benchPostgres)
case "seed":
    try await runSeed(Array(arguments.dropFirst()))
case "http-debits":
    try await runHTTPDebits(Array(arguments.dropFirst()))
case "http-listings":
    try await runHTTPListings(Array(arguments.dropFirst()))
case "verifier":
    try await runVerifierBench(Array(arguments.dropFirst()))
case "oversold":
    try await runOversold(Array(arguments.dropFirst()))
case "http-orders":
    try await runHTTPOrders(Array(arguments.dropFirst()))
default:
    FileHandle.standardError.write(Data("usage: ballast-bench [seed …|http-debits …|http-orders …] (see Benchmarks/ballast-bench/main.swift)\n".utf8))
    exit(2)
}
