import BallastCore
import BallastWire
import ChaosKit
import Commerce
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Operations

// How the domain's values become the wire's (`BallastWire`): the one place a response body is filled in. The
// chaos runner decodes the same types, and a test checks each against the OpenAPI document's schema.

extension UserBody {
    init(_ user: User) {
        self.init(id: user.id.description, name: user.name, role: user.role.rawValue, createdAt: user.createdAt)
    }
}

extension CreatedUser {
    init(user: User, token: String) {
        self.init(user: UserBody(user), token: token)
    }
}

extension WalletBody {
    init(_ wallet: Wallet) {
        self.init(id: wallet.id.description, ownerId: wallet.ownerId.description, currency: wallet.currency.code,
                  balance: wallet.balanceMinor, createdAt: wallet.createdAt)
    }
}

extension LedgerEntryBody {
    init(_ entry: LedgerEntry) {
        self.init(id: entry.id.description, kind: entry.kind.rawValue, amount: entry.amountMinor,
                  balanceAfter: entry.balanceAfterMinor, reference: entry.reference, createdAt: entry.createdAt)
    }
}

extension MovementBody {
    init(_ movement: WalletMovement) {
        self.init(wallet: WalletBody(movement.wallet), transaction: LedgerEntryBody(movement.entry))
    }
}

extension TransferBody {
    /// The target wallet in full only for its owner or an admin (SPEC I11).
    init(_ transfer: TransferResult, caller: User) {
        self.init(id: transfer.id.description, amount: transfer.amountMinor, from: WalletBody(transfer.from),
                  to: caller.isAdmin || transfer.to.ownerId == caller.id
                      ? .wallet(WalletBody(transfer.to)) : .idOnly(transfer.to.id.description))
    }
}

extension ProductBody {
    init(_ product: Product) {
        self.init(id: product.id.description, sellerId: product.sellerId.description, sku: product.sku, name: product.name,
                  price: product.priceMinor, currency: Currency.usd.code, stock: product.stock, status: product.status.rawValue,
                  createdAt: product.createdAt, updatedAt: product.updatedAt, deletedAt: product.deletedAt)
    }
}

extension ImpactBody {
    init(_ impact: ProductImpact) {
        self.init(productId: impact.productId.description, status: impact.status.rawValue, stock: impact.stock,
                  openOrders: impact.openOrders, awaitingShipment: impact.awaitingShipment, inTransit: impact.inTransit,
                  unitsInOpenOrders: impact.unitsInOpenOrders, revenueAtRisk: impact.revenueAtRiskMinor)
    }
}

extension OrderBody {
    init(_ order: Order) {
        self.init(
            id: order.id.description, status: order.status.rawValue, buyerId: order.buyerId.description,
            walletId: order.walletId.description,
            items: order.items.map { Item(productId: $0.productId.description, quantity: $0.quantity, unitPrice: $0.unitPriceMinor) },
            subtotal: order.subtotalMinor, shipping: order.shippingMinor, total: order.totalMinor, currency: Currency.usd.code,
            shippingSource: order.shippingSource.rawValue,
            destination: Destination(country: order.destination.country, postalCode: order.destination.postalCode),
            createdAt: order.createdAt, updatedAt: order.updatedAt)
    }
}

extension ListingBody {
    init(_ listing: Listing) {
        self.init(id: listing.id.description, ownerId: listing.ownerId.description, title: listing.title,
                  price: listing.priceMinor, version: listing.version, createdAt: listing.createdAt,
                  updatedAt: listing.updatedAt, deletedAt: listing.deletedAt)
    }
}

extension JobBody {
    init(_ status: JobStatus) {
        self.init(name: status.name, intervalSeconds: status.intervalSeconds, enabled: status.enabled, running: status.running,
                  lastRunAt: status.lastRunAt, lastStatus: status.lastStatus?.rawValue,
                  lastDurationSeconds: status.lastDurationSeconds, nextRunAt: status.nextRunAt)
    }
}

extension JobRunBody {
    init(_ run: JobRun) {
        self.init(name: run.name, status: run.status.rawValue, durationSeconds: run.durationSeconds, result: run.result)
    }
}

extension DiscrepancyBody {
    init(_ record: DiscrepancyRecord) {
        self.init(id: record.id, entityType: record.entityType, entityId: record.entityId,
                  discrepancyType: record.discrepancyType, fields: record.fields, expected: record.expected,
                  status: record.status, detectedAt: record.detectedAt, resolvedAt: record.resolvedAt,
                  resolution: record.resolution)
    }
}

extension NotificationBody {
    init(_ record: NotificationRecord) {
        self.init(id: record.id, channel: record.channel, recipient: record.recipient, template: record.template,
                  orderId: record.orderId, status: record.status, attempts: record.attempts,
                  nextAttemptAt: record.nextAttemptAt, lastError: record.lastError, createdAt: record.createdAt,
                  sentAt: record.sentAt)
    }
}

extension ChaosBody {
    /// `enabled` is whether injection is live at `now`; `durationSeconds` what is left of the time box.
    init(_ state: ChaosState, now: Date = Date()) {
        self.init(enabled: state.isLive(at: now), failRate: state.failRate, scope: state.scope.rawValue, seed: state.seed,
                  expiresAt: state.expiresAt,
                  durationSeconds: state.expiresAt.map { max(0, Int($0.timeIntervalSince(now).rounded(.up))) },
                  latencyMilliseconds: state.latencyMilliseconds, abortErrorRate: state.abortErrorRate,
                  version: state.version, reason: state.reason)
    }
}

extension EvidenceBody {
    /// An evidence record as the API and `ballast evidence export` show it.
    public init(_ record: EvidenceRecord) {
        self.init(
            id: record.id.lowercasedString, seq: record.seq,
            occurredAt: EvidenceTime.rfc3339(micros: record.occurredAtMicros), controlId: record.controlId,
            category: record.category, eventType: record.eventType, eventOutcome: record.eventOutcome,
            entityType: record.entityType, entityId: record.entityId, requestId: record.requestId,
            details: (try? JSONDecoder().decode(JSONValue.self, from: Data(record.details.utf8))) ?? .string(record.details),
            contentHash: record.contentHash, previousHash: record.previousHash)
    }
}

extension VerificationBody {
    public init(_ result: EvidenceLog.Verification) {
        self.init(records: result.records, valid: result.valid, firstInvalidId: result.firstInvalidId,
                  firstInvalidSeq: result.firstInvalidSeq, failure: result.failure, headSeq: result.headSeq,
                  headHash: result.headHash)
    }
}
