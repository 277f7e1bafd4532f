import Foundation

/// Where Velocity keeps its database: the `--data-dir` flag, else `$VELOCITY_DATA_DIR`, else
/// `$XDG_DATA_HOME/velocity`, else `~/.local/share/velocity`.
public enum DataDirectory {
    public static func resolve(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> URL
    {
        if let flag, !flag.isEmpty { return URL(fileURLWithPath: flag) }
        if let variable = environment["VELOCITY_DATA_DIR"], !variable.isEmpty {
            return URL(fileURLWithPath: variable)
        }
        if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("velocity")
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home).appendingPathComponent(".local/share/velocity")
    }
}
