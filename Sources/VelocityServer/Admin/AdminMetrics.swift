import Atomics
import Foundation
import VelocityTLS

/// Counters of config changes and certificate expiry, exposed in the Prometheus text format on `GET /metrics`.
final class AdminMetrics: Sendable {
    enum Result: String, CaseIterable {
        case applied, unchanged, rejected
    }

    private let counters = Result.allCases.map { _ in ManagedAtomic<Int>(0) }

    func record(_ result: Result) {
        counters[Result.allCases.firstIndex(of: result)!].wrappingIncrement(ordering: .relaxed)
    }

    /// `certificates`: what handshakes present now, whose expiry is reported per name.
    func exposition(revision: Int64, certificates: [TLSCredential]) -> String {
        var text = """
            # HELP velocity_config_revision The revision the data plane is serving.
            # TYPE velocity_config_revision gauge
            velocity_config_revision \(revision)
            # HELP velocity_config_changes_total Config changes received through the admin API, by result.
            # TYPE velocity_config_changes_total counter

            """
        for (result, counter) in zip(Result.allCases, counters) {
            text += "velocity_config_changes_total{result=\"\(result.rawValue)\"} \(counter.load(ordering: .relaxed))\n"
        }
        text += """
            # HELP velocity_certificate_not_after_seconds When the certificate presented for a name expires (Unix time).
            # TYPE velocity_certificate_not_after_seconds gauge

            """
        var seen = Set<String>()
        for credential in certificates {
            // Names and IP addresses never hold quotes or backslashes; the first certificate for a name wins.
            for name in credential.names where seen.insert(name).inserted {
                text += "velocity_certificate_not_after_seconds{name=\"\(name)\"} "
                text += "\(Int64(credential.notAfter.timeIntervalSince1970))\n"
            }
        }
        return text
    }
}
