import ArgumentParser
import Foundation

/// Issue 5's benchmark: postgres_changes on a table with row level security, every subscriber with claims of its
/// own (a distinct `sub`, one of `teams` teams) and allowed the rows of its team, changes stepped up in rate.
/// Herald groups subscribers by claims and asks `realtime.visible_rows` once per batch of changes; the summary
/// says how many calls each change cost (`pg_stat_user_functions`, `track_functions = all`).
struct RLSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rls",
        abstract: "postgres_changes under row level security: subscribers with distinct claims, changes/s stepped up."
    )

    @OptionGroup var harness: HarnessOptions

    @Option(help: "Subscribers, each with its own token (sub user-<m>, team t<m % teams>).")
    var subscribers = 3_000

    @Option(help: "Teams: each subscriber may see the rows of its team, 1 ÷ teams of all rows.")
    var teams = 5

    @Option(help: "Changes (inserted rows) per second, one step each.")
    var rates = "5,25,100,250,500"

    @Option(help: "Seconds each step writes.")
    var stepSeconds: Double = 5

    @Option(help: "After a step's writer stops, deliveries count for it until none came for this many seconds (at most 30 s).")
    var drainSeconds: Double = 3

    @Flag(help: "Tokens without a sub: the subscribers of a team share their claims (one group per team instead of one per subscriber).")
    var sharedClaims = false

    enum Policy: String, ExpressibleByArgument, Codable {
        /// `team = claims ->> 'team'`: reads one claim, so Herald checks one group per team.
        case team
        /// The same rows, found from the `sub` claim (user-<m> → team t<m % teams>): every subscriber is a group.
        case user
    }

    @Option(help: "The table's policy: team (reads the team claim) or user (reads sub: one claim group per subscriber).")
    var policy = Policy.team

    @Option(help: "The change source of herald serve.")
    var source = "replication"

    struct Summary: Codable {
        var scenario = "rls"
        var run: RunInfo
        var source: String
        var subscribers: Int
        var teams: Int
        var sharedClaims: Bool
        var policy: Policy
        var connect: ConnectOutcome
        var steps: [ChangeStepSummary]
        var targets: [TargetCheck]
    }

    func validate() throws {
        guard subscribers > 0, teams > 0 else { throw ValidationError("--subscribers and --teams must be positive") }
        if policy == .user && sharedClaims { throw ValidationError("--policy user reads sub, which --shared-claims leaves out") }
    }

    var policyExpression: String {
        switch policy {
        case .team: "team = current_setting('request.jwt.claims', true)::jsonb ->> 'team'"
        case .user: "team = 't' || split_part(current_setting('request.jwt.claims', true)::jsonb ->> 'sub', '-', 2)::int % \(teams)"
        }
    }

    func run() async throws {
        var settings = harness.settings()
        settings.heartbeatSeconds = 25
        let loads = try parseRates(rates).map { RowWriters.Load(connections: 1, rowsPerSecond: $0, seconds: stepSeconds) }
        let loadBefore = RunInfo.loadAverage()
        let database = try await ChangeDatabase.start(herald: settings.herald, cpu: settings.databaseCPU)
        defer { database.stop() }
        let table = "public.\(ChangeDatabase.table)"
        try await database.execute(
            """
            GRANT SELECT ON \(table) TO authenticated;
            ALTER TABLE \(table) ENABLE ROW LEVEL SECURITY;
            CREATE POLICY team_rows ON \(table) FOR SELECT TO authenticated USING (\(policyExpression));
            SELECT realtime.enable_capture('\(table)');
            """
        )
        let secret = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(separator: "-")
        let token = try await Subprocess.run(settings.herald, ["token", "--jwt-secret", secret, "--expires-in", "86400"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        progress("signing \(subscribers) tokens")
        let tokens = try await TeamTokens.sign(count: subscribers, teams: teams, withSubject: !sharedClaims, secret: secret)
        let group = SocketGroup(
            name: "rls", members: subscribers, roomSize: subscribers, presence: false,
            changes: ChangeSubscription(table: ChangeDatabase.table, keyGroups: nil, tokens: tokens)
        )
        let target = try await ListeningTarget.herald(settings.herald, source: source, database: database, secret: secret, cpu: settings.serverCPU)
        defer { target.stop() }
        // Rows cycle through the teams (key k, team t<k % teams>), so each reaches subscribers ÷ teams sockets.
        let pass = ChangePass(mode: "rls-\(source)", database: database, keyGroups: teams, teams: teams, drainSeconds: drainSeconds, countQueries: true)
        let outcome = try await pass.run(subscribers: group, target: target, token: token, settings: settings, connectConcurrency: harness.connectConcurrency, loads: loads)
        let log = String(target.log.suffix(1_000))
        target.stop()

        let within = outcome.steps.filter { step in
            step.lostDeliveries == 0 && step.writerErrors == 0 && (step.latencyMs.map { $0.p95 <= 100 } ?? false)
        }
        let best = within.compactMap(\.offeredRowsPerSecond).max()
        let worstQueries = outcome.steps.compactMap(\.queriesPerChange).max()
        let summary = Summary(
            run: RunInfo(
                herald: settings.herald, serverCPU: settings.serverCPU, generatorCPU: settings.generatorCPU,
                generatorProcesses: max(1, (subscribers + settings.socketsPerWorker - 1) / settings.socketsPerWorker),
                loadAverageBefore: loadBefore, loadAverageAfter: RunInfo.loadAverage(), serverLogTail: log.isEmpty ? nil : log
            ),
            source: source, subscribers: subscribers, teams: teams, sharedClaims: sharedClaims, policy: policy, connect: outcome.connect, steps: outcome.steps,
            targets: [
                TargetCheck(name: "changes/s at \(subscribers) subscribers with p95 <= 100 ms, none lost", target: ">= 100", measured: best, met: (best ?? 0) >= 100),
                TargetCheck(name: "realtime.visible_rows calls per change (worst step)", target: "<= 1", measured: worstQueries, met: (worstQueries ?? .infinity) <= 1),
            ]
        )
        print(try SummaryOutput.line(summary))
    }
}

/// HS256 tokens for the RLS subscribers, signed in one Python process (the standard library's hmac; the harness
/// has no crypto of its own): role authenticated, team t<m % teams>, and sub user-<m> when `withSubject`.
enum TeamTokens {
    static func sign(count: Int, teams: Int, withSubject: Bool, secret: String) async throws -> [String] {
        let script = """
            import base64, hashlib, hmac, json, sys, time
            count, teams, with_subject, secret = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4].encode()
            def part(value): return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=")
            header, now = part({"alg": "HS256", "typ": "JWT"}), int(time.time())
            for m in range(count):
                claims = {"role": "authenticated", "team": "t%d" % (m % teams), "iat": now, "exp": now + 86400}
                if with_subject: claims["sub"] = "user-%d" % m
                body = header + b"." + part(claims)
                signature = base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()).rstrip(b"=")
                print((body + b"." + signature).decode())
            """
        let output = try await Subprocess.run("/usr/bin/python3", ["-c", script, String(count), String(teams), withSubject ? "1" : "0", secret])
        let tokens = output.split(separator: "\n").map(String.init)
        guard tokens.count == count else { throw HarnessFailure("expected \(count) tokens, got \(tokens.count)") }
        return tokens
    }
}
