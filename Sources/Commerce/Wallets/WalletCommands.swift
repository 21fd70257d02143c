import DomainValues
import Storage

/// The wallet commands, as use cases: each parses its request, runs in one transaction (retry-safe when keyed, see
/// ``IdempotentCommands``) and answers what the caller may see (`render`).
public struct WalletCommands: Sendable {
    let wallets: WalletService
    let commands: IdempotentCommands

    public init(wallets: WalletService, commands: IdempotentCommands) {
        self.wallets = wallets
        self.commands = commands
    }

    /// A top-up, admins only: `{amount, reference?}`.
    public func credit(
        _ id: WalletID, _ command: CommandRequest, by caller: User, render: @escaping @Sendable (WalletMovement) throws -> String
    ) async throws -> CommandAnswer<WalletMovement> {
        try await movement(id, try MovementRequest(command.body), command, by: caller, apply: wallets.credit, render: render)
    }

    /// A withdrawal by the owner or an admin: `{amount, reference?}`. Without a key there is nothing to store beside
    /// the debit, so on PostgreSQL it is one statement that commits by itself (``WalletService/debitAlone(_:_:_:_:)``).
    public func debit(
        _ id: WalletID, _ command: CommandRequest, by caller: User, render: @escaping @Sendable (WalletMovement) throws -> String
    ) async throws -> CommandAnswer<WalletMovement> {
        let movement = try MovementRequest(command.body)
        if command.key == nil, let taken = try await wallets.debitAlone(id, movement.amount, movement.reference, caller) {
            return CommandAnswer(status: 200, body: try render(taken), value: taken)
        }
        return try await self.movement(id, movement, command, by: caller, apply: wallets.debit, render: render)
    }

    /// A credit or a debit (one shape, `movement` read from `command`'s body) on the wallet `id`.
    private func movement(
        _ id: WalletID, _ movement: MovementRequest, _ command: CommandRequest, by caller: User,
        apply: @escaping @Sendable (WalletID, Amount, String?, User, Transaction) async throws -> WalletMovement,
        render: @escaping @Sendable (WalletMovement) throws -> String
    ) async throws -> CommandAnswer<WalletMovement> {
        try await commands.run(command, by: caller.id, status: 200, effect: { transaction in
            try await apply(id, movement.amount, movement.reference, caller, transaction)
        }, render: render)
    }

    /// A transfer between two wallets of one currency: `{fromWalletId, toWalletId, amount}`.
    public func transfer(
        _ command: CommandRequest, by caller: User, render: @escaping @Sendable (TransferResult) throws -> String
    ) async throws -> CommandAnswer<TransferResult> {
        let transfer = try TransferRequest(command.body)
        return try await commands.run(command, by: caller.id, status: 201, effect: { [wallets] transaction in
            try await wallets.transfer(from: transfer.from, to: transfer.to, amount: transfer.amount, by: caller, in: transaction)
        }, render: render)
    }
}
