// herald: the command line — parse flags (and their environment variables), configure, run.
import ArgumentParser

@main
struct Herald: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Broadcasts PostgreSQL changes to WebSocket clients (Supabase Realtime protocol).",
        subcommands: [Dev.self, Serve.self, Migrate.self, Tables.self, Token.self]
    )
}
