import { defineConfig } from "drizzle-kit";

// Flat SQL migrations in migrations/: applied by the Node migrator at start and by
// `wrangler d1 migrations apply` for the Worker edition.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/catalog/schema.ts",
  out: "./migrations",
});
