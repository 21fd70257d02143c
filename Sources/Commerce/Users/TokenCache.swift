import Foundation
import Synchronization

/// Recently authenticated tokens (by hash), so a busy client does not cost a database read per request. An
/// entry lives ``timeToLive`` (10 s); users are never deleted and only `BALLAST_ADMIN_TOKEN` at start-up changes
/// a role, so a cached answer is at most that stale. Bounded: when ``capacity`` entries are held, the cache
/// starts over.
final class TokenCache: Sendable {
    static let timeToLive: Duration = .seconds(10)
    static let capacity = 10_000

    private struct Entry {
        let user: User
        let expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[String: Entry]>([:])

    func user(forHash hash: String) -> User? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[hash] else { return nil }
            guard entry.expires > now else {
                entries.removeValue(forKey: hash)
                return nil
            }
            return entry.user
        }
    }

    func remember(_ user: User, forHash hash: String) {
        let expires = ContinuousClock.now + Self.timeToLive
        entries.withLock { entries in
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[hash] = Entry(user: user, expires: expires)
        }
    }

    func forget(hash: String) {
        _ = entries.withLock { $0.removeValue(forKey: hash) }
    }
}
