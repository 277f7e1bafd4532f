import ArgumentParser
import Foundation
import VelocityConfig
import VelocityHTTP
import VelocityServer
import VelocityStore

@main
struct Velocity: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "velocity",
        abstract: "An HTTPS edge server driven by a JSON admin API, with its config kept in SQLite.",
        version: version,
        subcommands: [
            Run.self, Validate.self, Reload.self, Revisions.self, Rollback.self, Certs.self, CA.self,
            HashPassword.self, QUICCommand.self, Version.self,
        ]
    )
}

/// Where the CLI finds a running server's admin API.
struct AdminOptions: ParsableArguments {
    @Option(help: "Admin API address (host:port or unix:/path). Default: $VELOCITY_ADMIN, else 127.0.0.1:2019.")
    var admin: String?

    func client() throws -> AdminClient {
        let text = admin ?? ProcessInfo.processInfo.environment["VELOCITY_ADMIN"] ?? ConfigValidator.defaultAdminAddress
        guard let address = ListenAddress(text) else { throw ValidationError("invalid admin address \"\(text)\"") }
        return AdminClient(address: address)
    }
}

/// Prints an admin API answer; a status of 400 or above ends the command with exit code 1.
func report(_ response: AdminClient.Response) throws {
    FileHandle.standardOutput.write(Data(response.body.utf8))
    if response.status >= 400 { throw ExitCode(1) }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the server: resume the latest stored revision, or start on the embedded welcome site.")

    @Option(help: "Import this JSON config file as a new revision at start.")
    var config: String?

    @Flag(help: "Re-import the config file whenever it changes.")
    var watch = false

    @Option(
        help: "Data directory. Default: $VELOCITY_DATA_DIR, else $XDG_DATA_HOME/velocity, else ~/.local/share/velocity."
    )
    var dataDir: String?

    @Option(help: "Admin API address for this process, overriding the config's admin.listen.")
    var admin: String?

    func validate() throws {
        if watch, config == nil { throw ValidationError("--watch needs --config FILE") }
    }

    func run() async throws {
        VelocityRuntime.bootstrapLogging()
        let options = RunOptions(
            dataDirectory: DataDirectory.resolve(flag: dataDir), adminAddress: admin, configFile: config, watch: watch)
        do {
            try await VelocityRuntime.run(options)
        } catch let error as RuntimeError {
            FileHandle.standardError.write(Data("velocity: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a JSON config file without running it.")

    @Argument(help: "The config file.")
    var file: String

    @Option(help: "The admin address the config will run beside, if not its own admin.listen (for collision checks).")
    var admin: String?

    @Flag(help: "Print the result as JSON: {\"valid\": …, \"pointer\": …, \"error\": …}.")
    var json = false

    func run() throws {
        let result: JSONValue
        do {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ValidationError("cannot read \(file)")
            }
            let document = try JSONValue(parsing: data)
            let override = try admin.map { text in
                guard let address = ListenAddress(text) else {
                    throw ValidationError("invalid admin address \"\(text)\"")
                }
                return address
            }
            let adminAddress = ConfigValidator.adminAddress(of: document, override: override)
            _ = try ConfigValidator.validate(document, context: ValidationContext(adminAddress: adminAddress))
            result = ["valid": true]
        } catch let error as ConfigError {
            result = [
                "valid": false, "pointer": .string(error.pointer.description), "error": .string(error.description),
            ]
        } catch let error as JSONSyntaxError {
            result = ["valid": false, "offset": .integer(Int64(error.offset)), "error": .string(error.description)]
        }
        if json {
            print(result.serialized())
        } else if result["valid"] == .bool(true) {
            print("\(file): valid")
        } else {
            FileHandle.standardError.write(Data("\(file): \(result["error"]?.stringValue ?? "invalid")\n".utf8))
        }
        if result["valid"] != .bool(true) { throw ExitCode(1) }
    }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace a running server's config with a file (POST /load).")

    @Argument(help: "The JSON config file.")
    var file: String

    @OptionGroup var options: AdminOptions

    @Flag(help: "Make a new revision even if the config is unchanged.")
    var force = false

    func run() throws {
        guard let body = FileManager.default.contents(atPath: file) else {
            throw ValidationError("cannot read \(file)")
        }
        let headers = force ? ["Cache-Control": "must-revalidate"] : [:]
        try report(try options.client().send("POST", "/load", body: Array(body), headers: headers))
    }
}

struct Revisions: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List stored config revisions, newest first.")

    @OptionGroup var options: AdminOptions

    @Option(help: "How many to list.")
    var limit = 20

    func run() throws {
        let response = try options.client().send("GET", "/revisions?limit=\(limit)")
        guard response.status == 200, case .array(let list) = try JSONValue(parsing: response.body) else {
            return try report(response)
        }
        print("REVISION  TIME                      SOURCE    WHO")
        for entry in list {
            let number = entry["number"].map { "\($0)" } ?? "?"
            let time = entry["time"]?.stringValue ?? ""
            let source = entry["source"]?.stringValue ?? ""
            let who = entry["who"]?.stringValue ?? ""
            print(
                number.padding(toLength: 10, withPad: " ", startingAt: 0)
                    + time.padding(toLength: 26, withPad: " ", startingAt: 0)
                    + source.padding(toLength: 10, withPad: " ", startingAt: 0) + who)
        }
    }
}

struct Rollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an earlier revision current again (as a new revision).")

    @Argument(help: "The revision to return to.")
    var revision: Int64

    @OptionGroup var options: AdminOptions

    func run() throws {
        try report(try options.client().send("POST", "/revisions/\(revision)/rollback"))
    }
}

struct CA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca", abstract: "The internal certificate authority.", subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the internal CA's root certificate (PEM), to install where clients should trust it.")

        @Option(help: "Data directory, as for `velocity run`.")
        var dataDir: String?

        func run() throws {
            print(
                try VelocityRuntime.rootCertificatePEM(dataDirectory: DataDirectory.resolve(flag: dataDir)),
                terminator: "")
        }
    }
}

struct HashPassword: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Hash a password for basic_auth. Reads it from stdin (one trailing newline is dropped).")

    @Option(help: "The password. Prefer stdin: arguments show up in process listings and shell history.")
    var password: String?

    @Option(help: "log2 of scrypt's cost N (memory is 2^cost KiB; at most 18).")
    var cost: Int = ScryptHash.defaultLogRounds

    func run() throws {
        var text = password ?? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        if password == nil, text.hasSuffix("\n") { text.removeLast() }
        guard !text.isEmpty else { throw ValidationError("the password is empty") }
        do {
            print(try ScryptHash.derive(password: Array(text.utf8), logRounds: cost).encoded)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the version.")

    func run() {
        print("velocity \(Velocity.version)")
    }
}
