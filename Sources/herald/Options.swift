import ArgumentParser
import Foundation
import Logging

/// `--database-url`, falling back to `HERALD_DATABASE_URL` then `DATABASE_URL`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "PostgreSQL URL (env: HERALD_DATABASE_URL, DATABASE_URL).")
    var databaseURL: String?

    func resolved() throws -> String {
        guard let url = databaseURL ?? Environment.value("DATABASE_URL") else {
            throw CommandFailure("no database: pass --database-url or set DATABASE_URL")
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") || url.contains("=") else {
            throw CommandFailure("--database-url must be a postgres:// URL or a libpq connection string, got '\(url)'")
        }
        return url
    }
}

/// `--log-level`, shared by the long-running commands.
struct LoggingOptions: ParsableArguments {
    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical (env: HERALD_LOG_LEVEL).")
    var logLevel: String?

    func makeLogger() throws -> Logger {
        let name = logLevel ?? Environment.value("LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: name.lowercased()) else {
            throw CommandFailure("unknown log level '\(name)'")
        }
        var logger = Logger(label: "herald")
        logger.logLevel = level
        return logger
    }
}

enum Environment {
    /// `HERALD_<NAME>` wins over `<NAME>`.
    static func value(_ name: String) -> String? {
        let environment = ProcessInfo.processInfo.environment
        return environment["HERALD_\(name)"] ?? environment[name]
    }
}

/// A failure reported as one line on standard error with a non-zero exit status.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ParsableCommand {
    /// Runs `body`, turning any error into one clear line (no stack of wrapped errors, no secrets).
    static func failingCleanly<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as ValidationError {
            throw error
        } catch let error as CommandFailure {
            throw error
        } catch {
            throw CommandFailure("\(error)")
        }
    }
}

/// Writes one line to standard output unbuffered, so it shows up at once even when output is a file or a pipe.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
