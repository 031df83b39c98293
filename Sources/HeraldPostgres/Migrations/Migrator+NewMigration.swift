import Foundation

extension Migrator {
    /// Creates the next numbered migration file in `directory` (created if missing), e.g. `0002_add_things.sql`
    /// after `0001_chat.sql`, and returns its URL. The number is the highest existing one plus one.
    /// - Parameter name: free text, reduced to lowercase letters, digits and single underscores.
    /// - Throws: ``MigrationError`` `.invalidName` when nothing usable is left of `name`, `.invalidFile` on I/O errors.
    public static func newMigration(name: String, in directory: URL) throws(MigrationError) -> URL {
        let slug = sanitizedMigrationName(name)
        guard !slug.isEmpty else {
            throw MigrationError(code: .invalidName, files: [name], message: "a migration name needs at least one letter or digit")
        }
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let existing = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            let next = (existing.compactMap(MigrationSource.number(of:)).max() ?? 0) + 1
            let url = directory.appendingPathComponent("\(paddedNumber(next))_\(slug).sql")
            guard !FileManager.default.fileExists(atPath: url.path) else {
                throw CocoaError(.fileWriteFileExists, userInfo: [NSFilePathErrorKey: url.path])
            }
            try Data("-- \(slug)\n".utf8).write(to: url, options: .withoutOverwriting)
            return url
        } catch {
            throw MigrationError(code: .invalidFile, files: [directory.path], message: "cannot create the migration (\(error.localizedDescription))")
        }
    }

    /// `Add Things!` → `add_things`: lowercase ASCII letters and digits, other runs become one underscore.
    static func sanitizedMigrationName(_ name: String) -> String {
        var slug = ""
        for character in name.lowercased() {
            if character.isASCII && (character.isLetter || character.isNumber) {
                slug.append(character)
            } else if !slug.isEmpty && !slug.hasSuffix("_") {
                slug.append("_")
            }
        }
        while slug.hasSuffix("_") { slug.removeLast() }
        return slug
    }

    /// At least four digits: `0002`.
    static func paddedNumber(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
