import Atomics
import Foundation
import Logging
import VelocityConfig

/// Log lines on standard error, as JSON objects or console text. Level and format follow the current config:
/// ``apply(_:)`` is called whenever a snapshot is published.
struct LogOutput: LogHandler {
    private static let level = ManagedAtomic<Int>(2)
    private static let json = ManagedAtomic<Bool>(isatty(STDERR_FILENO) == 0)
    private static let lock = NSLock()

    let label: String
    var metadata: Logger.Metadata = [:]

    static func apply(_ config: LoggingConfig?) {
        let levels = Logger.Level.allCases
        level.store(levels.firstIndex(of: Logger.Level(config?.level) ?? .info) ?? 2, ordering: .relaxed)
        if let format = config?.format { json.store(format == .json, ordering: .relaxed) }
    }

    var logLevel: Logger.Level {
        get { Logger.Level.allCases[Self.level.load(ordering: .relaxed)] }
        set {}
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let time = Date().formatted(.iso8601)
        var line: String
        if Self.json.load(ordering: .relaxed) {
            var object: [String: JSONValue] = [
                "time": .string(time), "level": .string(event.level.rawValue), "logger": .string(label),
                "msg": .string("\(event.message)"),
            ]
            for (key, value) in merged { object[key] = .string("\(value)") }
            line = JSONValue.object(object).serialized()
        } else {
            line = "\(time) \(event.level.rawValue.uppercased()) \(label): \(event.message)"
            for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        }
        line += "\n"
        Self.lock.withLock { FileHandle.standardError.write(Data(line.utf8)) }
    }
}

extension Logger.Level {
    init?(_ level: LoggingConfig.Level?) {
        guard let level else { return nil }
        self.init(rawValue: level.rawValue)
    }
}
