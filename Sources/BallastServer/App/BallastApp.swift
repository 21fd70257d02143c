import BallastConfig
import BallastCore
import Hummingbird
import Logging
import ServiceLifecycle
import Storage

/// Builds the router and the application from ``AppServices``.
public enum BallastApp {
    /// The router with every middleware (outermost first: tracing when on, request id, access log, HTTP metrics,
    /// body limit, auth) and every route.
    public static func buildRouter(services: AppServices) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        let renderer = ErrorRenderer(metrics: services.metrics.factory)
        // Outermost when tracing is on, so the request's log lines and every span it opens belong to its trace;
        // absent (not even a check per request) when it is off.
        if Traces.isOn { router.add(middleware: TracingMiddleware()) }
        router.add(middleware: RequestIDMiddleware(renderer: renderer))
        router.add(middleware: AccessLogMiddleware(renderer: renderer))
        router.add(middleware: HTTPMetricsMiddleware(
            factory: services.metrics.factory, renderer: renderer, steadyState: services.steadyState))
        router.add(middleware: BodyLimitMiddleware())
        router.add(middleware: AuthMiddleware(users: services.users))

        HealthRoutes(services: services).register(on: router)
        MetricsRoutes(metrics: services.metrics).register(on: router)
        OpenAPIRoutes(environment: services.config.environment, jobNames: services.jobs.jobNames).register(on: router)
        UserRoutes(users: services.users).register(on: router)
        ChaosRoutes(chaos: services.chaos).register(on: router)
        EvidenceRoutes(evidence: services.evidence, metrics: services.metrics.factory).register(on: router)
        WalletRoutes(wallets: services.wallets, commands: services.walletCommands).register(on: router)
        ListingRoutes(listings: services.listings).register(on: router)
        NotificationRoutes(notifications: services.notifications).register(on: router)
        JobRoutes(runner: services.jobs, discrepancies: services.discrepancies, evidence: services.evidence).register(on: router)
        ProductRoutes(products: services.products).register(on: router)
        ProductSafetyRoutes(products: services.products).register(on: router)
        OrderRoutes(orders: services.orders, placement: services.orderPlacement).register(on: router)
        // After every route, so it wraps only the "no route" answer: a known path with another method is a 405.
        router.add(middleware: MethodNotAllowedMiddleware(
            table: RouteTable(router.routes.map { (method: $0.method.rawValue, path: "\($0.path)") })))
        return router
    }

    /// The HTTP application. The stores run as its services, so on shutdown the server drains first and the
    /// pools close after it; start-up waits for the primary store and migrates before the port opens.
    public static func buildApplication(services: AppServices) -> some ApplicationProtocol {
        // Shut down in reverse order: the server drains first, then the monitor stops, the shadow queue drains
        // (at most 5 s), queued evidence is written, and the pools close last.
        var storeServices: [any Service] = [services.primary]
        if let shadow = services.shadow { storeServices.append(shadow) }
        storeServices.append(services.evidenceAppender)
        if let writer = services.shadowWriter { storeServices.append(writer) }
        storeServices.append(services.events)
        storeServices.append(services.dispatcher)
        storeServices.append(services.chaosMonitor)
        storeServices.append(services.jobs)
        var app = Application(
            router: buildRouter(services: services),
            configuration: .init(
                address: .hostname(services.config.host, port: services.config.port),
                serverName: "ballast"),
            services: storeServices,
            logger: services.logger)
        app.beforeServerStarts {
            try await services.prepare()
        }
        return app
    }

    /// Runs the application until SIGTERM or SIGINT, then stops accepting connections, lets in-flight requests
    /// finish for at most 10 s, and closes the pools. `alongside` run for as long and stop after it (the trace
    /// exporter, so the spans of the last requests are still sent).
    public static func run(services: AppServices, alongside: [any Service] = []) async throws {
        let app = buildApplication(services: services)
        var configuration = ServiceGroupConfiguration(
            services: alongside + [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: services.logger)
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        configuration.maximumCancellationDuration = .seconds(5)
        try await ServiceGroup(configuration: configuration).run()
    }
}
