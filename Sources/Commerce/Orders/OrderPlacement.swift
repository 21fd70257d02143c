import DomainValues
/// Placing an order, the use case: the shipping quote first (outside any transaction, so a slow provider never holds
/// row locks, and only when the order will really be attempted, not for a replay), then stock, payment, the order
/// and its outbox rows in one transaction (``OrderService/place(_:quote:buyer:in:)``), retry-safe when keyed; after
/// the commit, the `order.placed` event. Every outcome is counted in `orders_total{outcome}`.
public struct OrderPlacement: Sendable {
    let orders: OrderService
    let shipping: any ShippingRates
    let commands: IdempotentCommands
    let events: EventBus

    public init(orders: OrderService, shipping: any ShippingRates, commands: IdempotentCommands, events: EventBus) {
        self.orders = orders
        self.shipping = shipping
        self.commands = commands
        self.events = events
    }

    /// `{items, destination, walletId?}` for `buyer`, read by `load` (so a body that is not JSON is counted too);
    /// `render` is the order as its buyer sees it.
    public func place(
        buyer: User, requestId: String?, load: () async throws -> CommandRequest,
        render: @escaping @Sendable (Order) throws -> String
    ) async throws -> CommandAnswer<Order> {
        do {
            let command = try await load()
            let request = try OrderRequest(command.body)
            let answer = try await commands.run(
                command, by: buyer.id, status: 201,
                prepare: { [shipping] in try await shipping.quote(destination: request.destination, items: request.items) },
                effect: { [orders] quote, transaction in try await orders.place(request, quote: quote, buyer: buyer, in: transaction) },
                withoutKey: { [orders] quote in try await orders.placeWithoutKey(request, quote: quote, buyer: buyer) },
                render: render)
            if let order = answer.value {
                events.publish(.orderPlaced(order), requestId: requestId)
                orders.countPlacement("created")
            } else {
                orders.countPlacement("replayed")
            }
            return answer
        } catch let error as AppError {
            orders.countPlacement(error.code.rawValue)
            throw error
        }
    }
}
