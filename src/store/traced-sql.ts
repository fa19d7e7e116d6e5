import type { Attributes } from "../tracing/spans.js";
import { inSpan, SpanKind } from "../tracing/spans.js";
import type { Sql } from "./sql.js";

/** Where the statements go, as the database semantic conventions name it (no credentials). */
export interface DatabaseTarget {
  /** The database's name (db.namespace). */
  namespace: string | undefined;
  address: string | undefined;
  port: number | undefined;
}

/**
 * The same Sql with one client span per statement, named by what it does to which table
 * ("SELECT dashboards", "INSERT audit_events"), and one span per transaction around its statements.
 * Never the parameters, and not even the text: the name is all a trace needs to find the statement
 * in src/store/, and the text of a few statements carries values (a statement timeout). Wrapped only
 * when tracing is on, so an untraced replica runs the undecorated Sql.
 */
export function tracedSql<S extends Sql>(sql: S, target: DatabaseTarget): S {
  const common: Attributes = {
    "db.system": "postgresql",
    "db.system.name": "postgresql",
    ...(target.namespace ? { "db.namespace": target.namespace } : {}),
    ...(target.address ? { "server.address": target.address } : {}),
    ...(target.port ? { "server.port": target.port } : {}),
  };
  const wrap = (inner: Sql): Sql => ({
    get inTransaction() {
      return inner.inTransaction;
    },
    notify: (channel, payload) => inner.notify(channel, payload),
    onCommit: (fn) => inner.onCommit(fn),
    query: (text, params, deadline, organization) => {
      const statement = statementOf(text);
      return inSpan(
        statement.summary,
        { kind: SpanKind.CLIENT, attributes: () => ({ ...common, ...statement.attributes }) },
        async (span) => {
          const result = await inner.query(text, params, deadline, organization);
          span?.setAttribute("db.response.returned_rows", result.rows.length);
          return result as never;
        },
      );
    },
    exec: (script) => {
      const statement = statementOf(script);
      return inSpan(statement.summary, { kind: SpanKind.CLIENT, attributes: () => ({ ...common }) }, () =>
        inner.exec(script),
      );
    },
    transaction: (fn, deadline, organization) =>
      inSpan("transaction", { attributes: () => ({ ...common }) }, () =>
        inner.transaction((tx) => fn(wrap(tx)), deadline, organization),
      ),
    close: () => inner.close(),
  });
  return { ...sql, ...wrap(sql) };
}

interface Statement {
  summary: string;
  attributes: Attributes;
}

// The store's statements are a fixed set of texts, so their names are worked out once each. Bounded,
// in case a statement ever embeds a value in its text.
const statements = new Map<string, Statement>();
const MAX_REMEMBERED = 512;

function statementOf(text: string): Statement {
  let statement = statements.get(text);
  if (statement) return statement;
  statement = describeStatement(text);
  if (statements.size < MAX_REMEMBERED) statements.set(text, statement);
  return statement;
}

/** "SELECT … FROM dashboards WHERE …" → SELECT dashboards; "SELECT pg_notify($1, $2)" → SELECT pg_notify. */
export function describeStatement(text: string): Statement {
  const sql = text.replace(/\s+/g, " ").trim();
  const operation = (/^[A-Za-z]+/.exec(sql)?.[0] ?? "SQL").toUpperCase();
  let target: string | undefined;
  switch (operation) {
    case "SELECT":
      target = /\bFROM ([A-Za-z_][\w.]*)/i.exec(sql)?.[1] ?? /^SELECT ([A-Za-z_]\w*)\s*\(/i.exec(sql)?.[1];
      break;
    case "INSERT":
      target = /^INSERT INTO ([A-Za-z_][\w.]*)/i.exec(sql)?.[1];
      break;
    case "UPDATE":
      target = /^UPDATE ([A-Za-z_][\w.]*)/i.exec(sql)?.[1];
      break;
    case "DELETE":
      target = /^DELETE FROM ([A-Za-z_][\w.]*)/i.exec(sql)?.[1];
      break;
    case "WITH":
      target = /\b(?:INSERT INTO|UPDATE|DELETE FROM|FROM) ([A-Za-z_][\w.]*)/i.exec(sql)?.[1];
      break;
  }
  const summary = target ? `${operation} ${target}` : operation;
  return {
    summary,
    attributes: {
      "db.query.summary": summary,
      "db.operation.name": operation,
      ...(target && operation !== "SELECT" ? { "db.collection.name": target } : {}),
      ...(target && operation === "SELECT" && /\bFROM /i.test(sql) ? { "db.collection.name": target } : {}),
    },
  };
}
