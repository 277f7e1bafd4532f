import Foundation

/// When to try again: renewal a little before a third of the lifetime is left, so that many certificates
/// issued together do not all renew in the same minute; after a failure, an exponential backoff.
enum RetrySchedule {
    /// The first retry after a failure; each further failure doubles it, up to `maximumBackoff`.
    static let firstBackoff: TimeInterval = 60
    static let maximumBackoff: TimeInterval = 6 * 3600
    /// How soon to look again when another process holds a name's lock.
    static let lockWait: TimeInterval = 2

    /// The delay after `failures` consecutive failures (1 or more): 1, 2, 4, … minutes, at most 6 hours, less
    /// up to a tenth at random.
    static func backoff(afterFailures failures: Int, random: Double = .random(in: 0..<1)) -> TimeInterval {
        let exponent = Double(max(0, min(failures - 1, 20)))
        let delay = min(firstBackoff * pow(2, exponent), maximumBackoff)
        return delay * (1 - random / 10)
    }

    /// The renewal time moved earlier by up to 2% of the lifetime (at most 30 minutes) at random.
    static func renewal(of certificate: IssuedCertificate, random: Double = .random(in: 0..<1)) -> Date {
        let lifetime = certificate.notAfter.timeIntervalSince(certificate.notBefore)
        return certificate.renewalTime - min(lifetime / 50, 1800) * random
    }
}
