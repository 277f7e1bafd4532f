import Atomics

/// Counters of config changes, exposed in the Prometheus text format on `GET /metrics`.
final class AdminMetrics: Sendable {
    enum Result: String, CaseIterable {
        case applied, unchanged, rejected
    }

    private let counters = Result.allCases.map { _ in ManagedAtomic<Int>(0) }

    func record(_ result: Result) {
        counters[Result.allCases.firstIndex(of: result)!].wrappingIncrement(ordering: .relaxed)
    }

    func exposition(revision: Int64) -> String {
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
        return text
    }
}
