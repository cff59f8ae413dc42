// What a JDBC application does, against orbitd, through the unchanged
// PostgreSQL JDBC driver (pgjdbc). Driven by tests/integration/test_jdbc.py:
//
//   javac -d TMP OrbitJdbc.java
//   java -cp /usr/share/java/postgresql.jar:TMP OrbitJdbc URL USER PASSWORD [CHECK...]
//
// Each check runs on its own and prints one line, "ok NAME" or
// "FAIL NAME: why" (the stack trace goes to stderr); the last line is
// "jdbc checks: N ok, N failed". Exit code 0 when every check passed, 1
// otherwise, 2 on bad arguments. With CHECK names only those run. The
// checks assert PostgreSQL's behaviour: the program passes against
// PostgreSQL 15 as well.
import java.math.BigDecimal;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicReference;

import org.postgresql.PGConnection;
import org.postgresql.PGStatement;

public class OrbitJdbc {
    interface Check {
        void run() throws Exception;
    }

    static String url, user, password;

    static Connection connect(String extra) throws SQLException {
        Properties p = new Properties();
        p.setProperty("user", user);
        p.setProperty("password", password);
        p.setProperty("connectTimeout", "10");
        p.setProperty("socketTimeout", "30");
        String u = url;
        if (extra != null && !extra.isEmpty())
            u += (u.contains("?") ? "&" : "?") + extra;
        return DriverManager.getConnection(u, p);
    }

    static Connection connect() throws SQLException {
        return connect(null);
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond)
            throw new AssertionError(String.format(fmt, args));
    }

    static void eq(Object want, Object got, String what) {
        boolean same = want == null ? got == null : want.equals(got);
        if (!same)
            throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    static void exec(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    static long scalarLong(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            check(rs.next(), "no row from %s", sql);
            return rs.getLong(1);
        }
    }

    static String sqlState(Check body) throws Exception {
        try {
            body.run();
        } catch (SQLException e) {
            return e.getSQLState();
        }
        throw new AssertionError("no SQLException");
    }

    /* A fresh table for a check: dropped first, so a rerun starts clean. */
    static void table(Connection c, String name, String cols) throws SQLException {
        exec(c, "DROP TABLE IF EXISTS " + name);
        exec(c, "CREATE TABLE " + name + " (" + cols + ")");
    }

    static final String TYPES_COLS = "id integer PRIMARY KEY, i integer, l bigint, d double precision, "
            + "s text, b boolean, bin bytea, ts timestamp";

    static final Map<String, Check> CHECKS = new LinkedHashMap<>();

    static {
        CHECKS.put("connect_scram", () -> {
            try (Connection c = connect()) {
                check(c.isValid(5), "isValid after connect");
                eq(user, c.getMetaData().getUserName(), "getUserName");
                eq(user, scalarString(c, "SELECT current_user"), "current_user");
            }
            // a wrong password is refused with SQLSTATE 28P01
            String saved = password;
            password = saved + "-wrong";
            try {
                eq("28P01", sqlState(() -> connect().close()), "wrong password SQLSTATE");
            } finally {
                password = saved;
            }
        });

        CHECKS.put("database_metadata", () -> {
            try (Connection c = connect()) {
                DatabaseMetaData md = c.getMetaData();
                eq("PostgreSQL", md.getDatabaseProductName(), "getDatabaseProductName");
                String v = md.getDatabaseProductVersion();
                check(v != null && v.matches("\\d+(\\.\\d+)*.*"), "getDatabaseProductVersion %s", v);
                check(md.getDatabaseMajorVersion() >= 9, "major version %d", md.getDatabaseMajorVersion());
                check(md.getDriverVersion().startsWith("42."), "driver version %s", md.getDriverVersion());
                check(md.supportsTransactions(), "supportsTransactions");
                check(md.supportsSavepoints(), "supportsSavepoints");
                check(md.supportsBatchUpdates(), "supportsBatchUpdates");
                eq("orbit", c.getCatalog(), "getCatalog");
                check(md.getURL().startsWith("jdbc:postgresql://"), "getURL %s", md.getURL());
                System.out.println("info product_version=" + v);
            }
        });

        CHECKS.put("ddl", () -> {
            try (Connection c = connect(); Statement s = c.createStatement()) {
                s.execute("DROP TABLE IF EXISTS jdbc_ddl");
                check(!s.execute("CREATE TABLE jdbc_ddl (id integer PRIMARY KEY, v text)"),
                        "CREATE TABLE returned a result set");
                eq(0, s.getUpdateCount(), "CREATE TABLE update count");
                check(!s.execute("CREATE INDEX jdbc_ddl_v ON jdbc_ddl (v)"), "CREATE INDEX result set");
                eq(0, s.executeUpdate("ALTER TABLE jdbc_ddl ADD COLUMN w integer"), "ALTER update count");
                eq(1, s.executeUpdate("INSERT INTO jdbc_ddl (id, v, w) VALUES (1, 'a', 2)"), "INSERT count");
                check(s.execute("SELECT id, v, w FROM jdbc_ddl"), "SELECT returned no result set");
                try (ResultSet rs = s.getResultSet()) {
                    check(rs.next(), "no row");
                    eq(2, rs.getInt("w"), "w");
                }
                s.execute("DROP TABLE jdbc_ddl");
                eq(0, s.getUpdateCount(), "DROP TABLE update count");
            }
        });

        CHECKS.put("prepared_types", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_types", TYPES_COLS);
                insertTypes(c);
                readTypes(c, false);
            }
        });

        CHECKS.put("prepared_types_binary", () -> {
            // prepareThreshold=-1: every statement is a named server-side one
            // and results come in binary format for the types the driver
            // knows (int, bigint, double, bool, bytea, timestamp)
            try (Connection c = connect("prepareThreshold=-1")) {
                table(c, "jdbc_types_bin", TYPES_COLS);
                insertTypesInto(c, "jdbc_types_bin", true);
                readTypesFrom(c, "jdbc_types_bin", true, true);
            }
        });

        CHECKS.put("simple_query_mode", () -> {
            // preferQueryMode=simple (used behind transaction poolers): the
            // driver inlines parameters as literals with casts
            // (byte[] parameters are not supported in this mode, with
            // PostgreSQL neither: the driver leaves a "?" in the text)
            try (Connection c = connect("preferQueryMode=simple")) {
                table(c, "jdbc_types_simple", TYPES_COLS);
                insertTypesInto(c, "jdbc_types_simple", false);
                readTypesFrom(c, "jdbc_types_simple", false, false);
                // a batch is sent as one multi-statement query
                table(c, "jdbc_batch_simple", "id integer PRIMARY KEY, s text");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_batch_simple VALUES (?, ?)")) {
                    for (int k = 1; k <= 50; k++) {
                        ps.setInt(1, k);
                        ps.setString(2, "it's " + k);
                        ps.addBatch();
                    }
                    eq(50, ps.executeBatch().length, "batch counts");
                }
                eq(50L, scalarLong(c, "SELECT count(*) FROM jdbc_batch_simple WHERE s LIKE 'it''s %'"), "batch rows");
            }
        });

        CHECKS.put("resultset_metadata", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_rsmd", TYPES_COLS);
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery("SELECT id, i, l, d, s, b, bin, ts FROM jdbc_rsmd")) {
                    ResultSetMetaData md = rs.getMetaData();
                    eq(8, md.getColumnCount(), "column count");
                    int[] want = {Types.INTEGER, Types.INTEGER, Types.BIGINT, Types.DOUBLE, Types.VARCHAR,
                        Types.BIT, Types.BINARY, Types.TIMESTAMP};
                    String[] names = {"int4", "int4", "int8", "float8", "text", "bool", "bytea", "timestamp"};
                    String[] labels = {"id", "i", "l", "d", "s", "b", "bin", "ts"};
                    for (int k = 0; k < 8; k++) {
                        eq(labels[k], md.getColumnLabel(k + 1), "label " + (k + 1));
                        eq(want[k], md.getColumnType(k + 1), "type of " + labels[k]);
                        eq(names[k], md.getColumnTypeName(k + 1), "type name of " + labels[k]);
                    }
                    eq("java.lang.Integer", md.getColumnClassName(1), "class of id");
                    eq("java.lang.String", md.getColumnClassName(5), "class of s");
                }
                // expressions: the type comes from the value
                try (PreparedStatement ps = c.prepareStatement("SELECT 1 + ?, 'x' || ?, 2.5 * ?")) {
                    ps.setInt(1, 1);
                    ps.setString(2, "y");
                    ps.setDouble(3, 2.0);
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "no row");
                        eq(2, rs.getInt(1), "1 + 1");
                        eq("xy", rs.getString(2), "'x' || 'y'");
                        eq(5.0, rs.getDouble(3), "2.5 * 2.0");
                    }
                }
            }
        });

        CHECKS.put("update_counts", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_counts", "id integer PRIMARY KEY, v integer");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_counts VALUES (?, ?)")) {
                    for (int k = 1; k <= 10; k++) {
                        ps.setInt(1, k);
                        ps.setInt(2, k % 3);
                        eq(1, ps.executeUpdate(), "insert count");
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("UPDATE jdbc_counts SET v = v + 10 WHERE v = ?")) {
                    ps.setInt(1, 0);
                    eq(3, ps.executeUpdate(), "update v=0 count");
                    ps.setInt(1, 99);
                    eq(0, ps.executeUpdate(), "update none count");
                }
                try (Statement s = c.createStatement()) {
                    eq(4, s.executeUpdate("DELETE FROM jdbc_counts WHERE v = 1"), "delete count");
                    eq(3, s.executeUpdate("INSERT INTO jdbc_counts SELECT id + 100, v FROM jdbc_counts WHERE v = 2"),
                            "insert-select count");
                    eq(9L, scalarLong(c, "SELECT count(*) FROM jdbc_counts"), "rows left");
                }
            }
        });

        CHECKS.put("batch", () -> {
            try (Connection c = connect()) {
                batchInserts(c, "jdbc_batch", false);
            }
        });

        CHECKS.put("batch_rewritten", () -> {
            try (Connection c = connect("reWriteBatchedInserts=true")) {
                batchInserts(c, "jdbc_batch_rw", true);
            }
        });

        CHECKS.put("batch_error", () -> {
            // a failing row in a batch: BatchUpdateException with the
            // row's SQLSTATE; autocommit rows before it stay
            try (Connection c = connect()) {
                table(c, "jdbc_batch_err", "id integer PRIMARY KEY");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_batch_err VALUES (?)")) {
                    for (int id : new int[] {1, 2, 2, 3}) {
                        ps.setInt(1, id);
                        ps.addBatch();
                    }
                    try {
                        ps.executeBatch();
                        throw new AssertionError("duplicate in batch accepted");
                    } catch (BatchUpdateException e) {
                        SQLException next = e.getNextException();
                        String st = next != null ? next.getSQLState() : e.getSQLState();
                        eq("23505", st, "batch error SQLSTATE");
                    }
                }
                check(c.isValid(5), "connection after batch error");
                long n = scalarLong(c, "SELECT count(*) FROM jdbc_batch_err");
                check(n <= 2, "rows after failed batch: %d", n);
            }
        });

        CHECKS.put("statement_batch", () -> {
            try (Connection c = connect(); Statement s = c.createStatement()) {
                table(c, "jdbc_sbatch", "id integer PRIMARY KEY, v text");
                s.addBatch("INSERT INTO jdbc_sbatch VALUES (1, 'a')");
                s.addBatch("INSERT INTO jdbc_sbatch VALUES (2, 'b'), (3, 'c')");
                s.addBatch("UPDATE jdbc_sbatch SET v = 'z' WHERE id >= 2");
                s.addBatch("DELETE FROM jdbc_sbatch WHERE id = 1");
                eq("[1, 2, 2, 1]", Arrays.toString(s.executeBatch()), "statement batch counts");
            }
        });

        CHECKS.put("transactions", () -> {
            try (Connection c = connect(); Connection other = connect()) {
                table(c, "jdbc_tx", "id integer PRIMARY KEY, v text");
                c.setAutoCommit(false);
                check(!c.getAutoCommit(), "autocommit still on");
                exec(c, "INSERT INTO jdbc_tx VALUES (1, 'rolled back')");
                eq(1L, scalarLong(c, "SELECT count(*) FROM jdbc_tx"), "own uncommitted row");
                eq(0L, scalarLong(other, "SELECT count(*) FROM jdbc_tx"), "other sees uncommitted");
                c.rollback();
                eq(0L, scalarLong(c, "SELECT count(*) FROM jdbc_tx"), "after rollback");

                exec(c, "INSERT INTO jdbc_tx VALUES (2, 'kept')");
                c.commit();
                eq(1L, scalarLong(other, "SELECT count(*) FROM jdbc_tx WHERE id = 2"), "other after commit");

                // savepoints: unnamed and named, rollback to one, release one
                exec(c, "INSERT INTO jdbc_tx VALUES (3, 'before sp')");
                Savepoint sp = c.setSavepoint();
                exec(c, "INSERT INTO jdbc_tx VALUES (4, 'after sp')");
                c.rollback(sp);
                Savepoint named = c.setSavepoint("jdbc_named");
                exec(c, "INSERT INTO jdbc_tx VALUES (5, 'released')");
                c.releaseSavepoint(named);
                c.commit();
                eq("[2, 3, 5]", ids(other, "jdbc_tx"), "rows after savepoints");

                // an error inside a transaction, rolled back to a savepoint
                Savepoint sp2 = c.setSavepoint();
                eq("23505", sqlState(() -> exec(c, "INSERT INTO jdbc_tx VALUES (2, 'dup')")), "dup in tx");
                eq("25P02", sqlState(() -> scalarLong(c, "SELECT 1")), "statement in failed tx");
                c.rollback(sp2);
                exec(c, "INSERT INTO jdbc_tx VALUES (6, 'after error')");
                c.commit();
                eq("[2, 3, 5, 6]", ids(other, "jdbc_tx"), "rows after savepoint rollback");

                // back to autocommit: a pending transaction commits
                exec(c, "INSERT INTO jdbc_tx VALUES (7, 'autocommit switch')");
                c.setAutoCommit(true);
                eq("[2, 3, 5, 6, 7]", ids(other, "jdbc_tx"), "rows after setAutoCommit(true)");
            }
        });

        CHECKS.put("isolation_readonly", () -> {
            // what connection pools and frameworks set on every connection
            try (Connection c = connect()) {
                c.setTransactionIsolation(Connection.TRANSACTION_SERIALIZABLE);
                eq(Connection.TRANSACTION_SERIALIZABLE, c.getTransactionIsolation(), "isolation");
                c.setTransactionIsolation(Connection.TRANSACTION_READ_COMMITTED);
                int iso = c.getTransactionIsolation();
                check(iso == Connection.TRANSACTION_READ_COMMITTED || iso == Connection.TRANSACTION_SERIALIZABLE,
                        "isolation after READ COMMITTED: %d", iso);
                table(c, "jdbc_ro", "id integer");
                c.setAutoCommit(false);
                c.setReadOnly(true);
                check(c.isReadOnly(), "isReadOnly");
                eq(0L, scalarLong(c, "SELECT count(*) FROM jdbc_ro"), "read in read-only tx");
                eq("25006", sqlState(() -> exec(c, "INSERT INTO jdbc_ro VALUES (1)")), "write in read-only tx");
                c.rollback();
                c.setReadOnly(false);
                exec(c, "INSERT INTO jdbc_ro VALUES (1)");
                c.commit();
                c.setAutoCommit(true);
                eq(1L, scalarLong(c, "SELECT count(*) FROM jdbc_ro"), "row after read-write tx");
                String schema = c.getSchema();
                check(schema != null, "getSchema");
            }
        });

        CHECKS.put("server_prepare", () -> {
            // default prepareThreshold (5): the driver switches to a named
            // server-side statement (and binary results) on the 5th run
            try (Connection c = connect()) {
                serverPrepare(c, 5);
            }
        });

        CHECKS.put("server_prepare_threshold1", () -> {
            try (Connection c = connect("prepareThreshold=1")) {
                eq(1, c.unwrap(PGConnection.class).getPrepareThreshold(), "threshold");
                serverPrepare(c, 1);
            }
        });

        CHECKS.put("schema_change", () -> {
            // statements prepared before another connection changes the
            // table: the result columns follow the table (a server-prepared
            // statement gets "cached plan must not change result type",
            // which the driver answers by preparing it again)
            try (Connection a = connect("prepareThreshold=1"); Connection u = connect(); Connection b = connect()) {
                table(b, "jdbc_schema", "id integer PRIMARY KEY, v text");
                exec(b, "INSERT INTO jdbc_schema VALUES (1, 'one')");
                String sql = "SELECT * FROM jdbc_schema WHERE id > ?";
                try (PreparedStatement pa = a.prepareStatement(sql); PreparedStatement pu = u.prepareStatement(sql)) {
                    for (int round = 0; round < 3; round++) {
                        for (PreparedStatement ps : new PreparedStatement[] {pa, pu}) {
                            for (int k = 0; k < 3; k++) {
                                ps.setInt(1, 0);
                                try (ResultSet rs = ps.executeQuery()) {
                                    check(rs.next(), "row");
                                    int n = rs.getMetaData().getColumnCount();
                                    eq(round == 1 ? 3 : 2, n, "columns in round " + round);
                                    eq(1, rs.getInt("id"), "id");
                                    if (round == 1)
                                        eq(7, rs.getInt("w"), "new column");
                                    else
                                        eq(round == 0 ? "one" : null, rs.getObject(2), "second column");
                                }
                            }
                        }
                        if (round == 0) {
                            exec(b, "ALTER TABLE jdbc_schema ADD COLUMN w integer");
                            exec(b, "UPDATE jdbc_schema SET w = 7");
                        } else if (round == 1) {
                            exec(b, "ALTER TABLE jdbc_schema DROP COLUMN v");
                            exec(b, "UPDATE jdbc_schema SET w = NULL");
                        }
                    }
                }
            }
        });

        CHECKS.put("fetch_size", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_fetch", "id integer PRIMARY KEY, v text");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_fetch VALUES (?, ?)")) {
                    for (int k = 1; k <= 250; k++) {
                        ps.setInt(1, k);
                        ps.setString(2, "row " + k);
                        ps.addBatch();
                    }
                    ps.executeBatch();
                }
                c.setAutoCommit(false); // the driver uses a portal with a row limit only then
                try (PreparedStatement ps = c.prepareStatement("SELECT id, v FROM jdbc_fetch WHERE id > ? ORDER BY id")) {
                    ps.setFetchSize(7);
                    ps.setInt(1, 0);
                    for (int round = 0; round < 2; round++) {
                        long sum = 0;
                        int n = 0;
                        try (ResultSet rs = ps.executeQuery()) {
                            eq(7, rs.getFetchSize(), "fetch size");
                            while (rs.next()) {
                                n++;
                                sum += rs.getInt(1);
                                eq("row " + rs.getInt(1), rs.getString(2), "v");
                                if (n == 100) // another statement while the portal is open
                                    eq(250L, scalarLong(c, "SELECT count(*) FROM jdbc_fetch"), "count mid-fetch");
                            }
                        }
                        eq(250, n, "rows fetched");
                        eq(250L * 251 / 2, sum, "sum of ids");
                    }
                }
                // two open cursors on one connection, read in turns
                try (Statement a = c.createStatement(); Statement b = c.createStatement()) {
                    a.setFetchSize(10);
                    b.setFetchSize(3);
                    try (ResultSet ra = a.executeQuery("SELECT id FROM jdbc_fetch ORDER BY id");
                            ResultSet rb = b.executeQuery("SELECT id FROM jdbc_fetch ORDER BY id DESC")) {
                        for (int k = 1; k <= 50; k++) {
                            check(ra.next() && rb.next(), "row %d", k);
                            eq(k, ra.getInt(1), "ascending");
                            eq(251 - k, rb.getInt(1), "descending");
                        }
                    }
                }
                c.commit();
            }
        });

        CHECKS.put("error_mapping", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_err", "id integer PRIMARY KEY, v text NOT NULL");
                exec(c, "INSERT INTO jdbc_err VALUES (1, 'a')");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_err VALUES (?, ?)")) {
                    ps.setInt(1, 1);
                    ps.setString(2, "dup");
                    try {
                        ps.executeUpdate();
                        throw new AssertionError("duplicate key accepted");
                    } catch (SQLException e) {
                        eq("23505", e.getSQLState(), "unique violation SQLSTATE");
                    }
                    ps.setInt(1, 2);
                    ps.setNull(2, Types.VARCHAR);
                    eq("23502", sqlState(() -> ps.executeUpdate()), "not-null violation SQLSTATE");
                    ps.setInt(1, 2);
                    ps.setString(2, "b");
                    eq(1, ps.executeUpdate(), "insert after errors");
                }
                eq("42601", sqlState(() -> exec(c, "SELEC 1")), "syntax error SQLSTATE");
                eq("42P01", sqlState(() -> exec(c, "SELECT * FROM jdbc_no_such_table")), "undefined table");
                // in a transaction: the error aborts it; after rollback the
                // connection works
                c.setAutoCommit(false);
                exec(c, "INSERT INTO jdbc_err VALUES (3, 'c')");
                eq("23505", sqlState(() -> exec(c, "INSERT INTO jdbc_err VALUES (1, 'again')")), "dup in tx");
                c.rollback();
                eq(2L, scalarLong(c, "SELECT count(*) FROM jdbc_err"), "rows after rollback");
                c.commit();
                c.setAutoCommit(true);
                check(c.isValid(5), "isValid after errors");
            }
        });

        CHECKS.put("generated_keys", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_keys", "id serial PRIMARY KEY, v text");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_keys (v) VALUES (?)",
                        Statement.RETURN_GENERATED_KEYS)) {
                    ps.setString(1, "a");
                    eq(1, ps.executeUpdate(), "insert count");
                    try (ResultSet rs = ps.getGeneratedKeys()) {
                        check(rs.next(), "no generated key row");
                        eq(1, rs.getInt("id"), "generated id");
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_keys (v) VALUES (?)",
                        new String[] {"id"})) {
                    ps.setString(1, "b");
                    ps.executeUpdate();
                    try (ResultSet rs = ps.getGeneratedKeys()) {
                        check(rs.next(), "no generated key row");
                        eq(2, rs.getInt(1), "generated id by column name");
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_keys (v) VALUES (?) RETURNING id, v")) {
                    ps.setString(1, "c");
                    try (ResultSet rs = ps.executeQuery()) {
                        check(rs.next(), "no RETURNING row");
                        eq(3, rs.getInt(1), "RETURNING id");
                        eq("c", rs.getString(2), "RETURNING v");
                    }
                }
                // an identity column, keys of a batch
                table(c, "jdbc_keys_id", "id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, v text");
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_keys_id (v) VALUES (?)",
                        Statement.RETURN_GENERATED_KEYS)) {
                    for (String v : new String[] {"x", "y", "z"}) {
                        ps.setString(1, v);
                        ps.addBatch();
                    }
                    ps.executeBatch();
                    List<Long> keys = new ArrayList<>();
                    try (ResultSet rs = ps.getGeneratedKeys()) {
                        while (rs.next())
                            keys.add(rs.getLong("id"));
                    }
                    eq("[1, 2, 3]", keys.toString(), "batch generated keys");
                }
            }
        });

        CHECKS.put("is_valid", () -> {
            Connection c = connect();
            check(c.isValid(5), "isValid");
            check(c.isValid(0), "isValid(0)");
            c.close();
            check(!c.isValid(5), "isValid after close");
            check(c.isClosed(), "isClosed");
        });

        CHECKS.put("query_timeout", () -> {
            // setQueryTimeout: the driver sends a CancelRequest
            try (Connection c = connect(); Statement s = c.createStatement()) {
                s.setQueryTimeout(1);
                long t0 = System.nanoTime();
                eq("57014", sqlState(() -> s.execute("SELECT pg_sleep(10)")), "cancelled SQLSTATE");
                long ms = (System.nanoTime() - t0) / 1000000;
                check(ms < 8000, "cancel took %d ms", ms);
                s.setQueryTimeout(0);
                eq(1L, scalarLong(c, "SELECT 1"), "after cancel");
            }
        });

        CHECKS.put("multiple_connections", () -> {
            try (Connection setup = connect()) {
                table(setup, "jdbc_multi", "id integer PRIMARY KEY, who integer");
            }
            int nconn = 4, per = 25;
            AtomicReference<Throwable> err = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int w = 0; w < nconn; w++) {
                final int who = w;
                Thread t = new Thread(() -> {
                    try (Connection c = connect()) {
                        try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_multi VALUES (?, ?)")) {
                            for (int k = 0; k < per; k++) {
                                ps.setInt(1, who * 1000 + k);
                                ps.setInt(2, who);
                                ps.executeUpdate();
                            }
                        }
                        c.setAutoCommit(false);
                        for (int k = 0; k < 5; k++) {
                            for (int attempt = 0;; attempt++) {
                                try {
                                    exec(c, "UPDATE jdbc_multi SET who = who WHERE id = " + (who * 1000 + k));
                                    c.commit();
                                    break;
                                } catch (SQLException e) {
                                    c.rollback();
                                    if (!"40001".equals(e.getSQLState()) || attempt > 20)
                                        throw e;
                                }
                            }
                        }
                    } catch (Throwable e) {
                        err.compareAndSet(null, e);
                    }
                });
                threads.add(t);
                t.start();
            }
            for (Thread t : threads)
                t.join(30000);
            if (err.get() != null)
                throw new AssertionError("worker failed: " + err.get(), err.get());
            try (Connection c = connect()) {
                eq((long) nconn * per, scalarLong(c, "SELECT count(*) FROM jdbc_multi"), "rows from all connections");
                eq((long) nconn, scalarLong(c, "SELECT count(DISTINCT who) FROM jdbc_multi"), "writers");
            }
        });

        CHECKS.put("dates_times_numeric", () -> {
            // text results (the driver's first executions) ...
            try (Connection c = connect()) {
                datesTimesNumeric(c, "jdbc_dt_text", false);
            }
        });

        CHECKS.put("dates_times_numeric_binary", () -> {
            // ... and binary ones (server-prepared from the first execution)
            try (Connection c = connect("prepareThreshold=-1")) {
                datesTimesNumeric(c, "jdbc_dt_bin", true);
            }
        });

        CHECKS.put("uuid_json", () -> {
            // UUID parameters go in binary; a uuid column comes back as a UUID
            try (Connection c = connect("prepareThreshold=2")) {
                table(c, "jdbc_uuid", "id uuid PRIMARY KEY, doc json");
                List<UUID> ids = new ArrayList<>();
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_uuid VALUES (?, ?)")) {
                    for (int k = 0; k < 4; k++) {
                        UUID u = UUID.randomUUID();
                        ids.add(u);
                        ps.setObject(1, u);
                        ps.setObject(2, "{\"k\": " + k + "}", Types.OTHER);
                        eq(1, ps.executeUpdate(), "insert");
                    }
                }
                try (PreparedStatement ps = c.prepareStatement("SELECT id, doc FROM jdbc_uuid WHERE id = ?")) {
                    for (int round = 0; round < 3; round++) {
                        for (int k = 1; k < 4; k++) {
                            ps.setObject(1, ids.get(k));
                            try (ResultSet rs = ps.executeQuery()) {
                                check(rs.next(), "row for %s", ids.get(k));
                                eq(ids.get(k), rs.getObject(1), "uuid");
                                eq(ids.get(k), rs.getObject(1, UUID.class), "getObject(UUID.class)");
                                eq("{\"k\": " + k + "}", rs.getString(2), "json");
                            }
                        }
                    }
                }
                eq(Types.OTHER, scalarType(c, "SELECT id FROM jdbc_uuid"), "uuid column type");
                eq("uuid", scalarTypeName(c, "SELECT id FROM jdbc_uuid"), "uuid column type name");
            }
        });

        CHECKS.put("strings_and_numbers", () -> {
            try (Connection c = connect()) {
                table(c, "jdbc_misc", "id integer PRIMARY KEY, s text, n numeric, f real");
                String uni = "h\u00e9llo \u4e16\u754c \ud83d\ude00 'quote' \"dq\" \\ back";
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO jdbc_misc VALUES (?, ?, ?, ?)")) {
                    ps.setInt(1, 1);
                    ps.setString(2, uni);
                    ps.setBigDecimal(3, new BigDecimal("12.5"));
                    ps.setFloat(4, 1.5f);
                    ps.executeUpdate();
                    ps.setInt(1, 2);
                    ps.setString(2, "");
                    ps.setObject(3, 7);
                    ps.setObject(4, null, Types.REAL);
                    ps.executeUpdate();
                }
                try (Statement s = c.createStatement();
                        ResultSet rs = s.executeQuery("SELECT s, n, f FROM jdbc_misc ORDER BY id")) {
                    check(rs.next(), "row 1");
                    eq(uni, rs.getString(1), "unicode string");
                    eq(0, new BigDecimal("12.5").compareTo(rs.getBigDecimal(2)), "numeric");
                    eq(1.5f, rs.getFloat(3), "real");
                    check(rs.next(), "row 2");
                    eq("", rs.getString(1), "empty string");
                    check(!rs.wasNull(), "empty string is not NULL");
                    eq(7L, rs.getLong(2), "numeric from setObject");
                    eq(0.0f, rs.getFloat(3), "NULL real as float");
                    check(rs.wasNull(), "NULL real wasNull");
                    eq(null, rs.getObject(3), "NULL real getObject");
                }
                eq(Long.MAX_VALUE, scalarLong(c, "SELECT 9223372036854775807"), "max bigint");
            }
        });
    }

    static String scalarString(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            check(rs.next(), "no row from %s", sql);
            return rs.getString(1);
        }
    }

    static int scalarType(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            return rs.getMetaData().getColumnType(1);
        }
    }

    static String scalarTypeName(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            return rs.getMetaData().getColumnTypeName(1);
        }
    }

    static String ids(Connection c, String table) throws SQLException {
        List<Integer> out = new ArrayList<>();
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT id FROM " + table + " ORDER BY id")) {
            while (rs.next())
                out.add(rs.getInt(1));
        }
        return out.toString();
    }

    static final byte[] BYTES = {0, 1, 2, (byte) 0xff, (byte) 0x80, 'a', '\\', 0};
    static final Timestamp TS = Timestamp.valueOf("2024-02-29 13:45:06.123456");

    static void insertTypes(Connection c) throws SQLException {
        insertTypesInto(c, "jdbc_types", true);
    }

    static void insertTypesInto(Connection c, String t, boolean bytes) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, i, l, d, s, b, bin, ts) "
                + "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
            ps.setInt(1, 1);
            ps.setInt(2, -2147483648);
            ps.setLong(3, 9007199254740993L);
            ps.setDouble(4, 3.141592653589793);
            ps.setString(5, "text value");
            ps.setBoolean(6, true);
            if (bytes)
                ps.setBytes(7, BYTES);
            else
                ps.setNull(7, Types.BINARY);
            ps.setTimestamp(8, TS);
            eq(1, ps.executeUpdate(), "insert row 1");

            ps.setInt(1, 2);
            ps.setNull(2, Types.INTEGER);
            ps.setNull(3, Types.BIGINT);
            ps.setNull(4, Types.DOUBLE);
            ps.setNull(5, Types.VARCHAR);
            ps.setNull(6, Types.BOOLEAN);
            ps.setNull(7, Types.BINARY);
            ps.setNull(8, Types.TIMESTAMP);
            eq(1, ps.executeUpdate(), "insert NULL row");

            ps.setInt(1, 3);
            ps.setInt(2, 0);
            ps.setLong(3, -1L);
            ps.setDouble(4, -0.5e-300);
            ps.setString(5, "false row");
            ps.setBoolean(6, false);
            if (bytes)
                ps.setBytes(7, new byte[0]);
            else
                ps.setNull(7, Types.BINARY);
            ps.setTimestamp(8, Timestamp.valueOf("1999-12-31 23:59:59"));
            eq(1, ps.executeUpdate(), "insert row 3");
        }
    }

    static void readTypes(Connection c, boolean binary) throws SQLException {
        readTypesFrom(c, "jdbc_types", binary, true);
    }

    static void readTypesFrom(Connection c, String t, boolean binary, boolean bytes) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT id, i, l, d, s, b, bin, ts FROM " + t
                + " WHERE id >= ? ORDER BY id")) {
            ps.setInt(1, 1);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "row 1 missing");
                eq(-2147483648, rs.getInt("i"), "getInt");
                check(!rs.wasNull(), "wasNull after a value");
                eq(9007199254740993L, rs.getLong("l"), "getLong");
                eq(3.141592653589793, rs.getDouble("d"), "getDouble");
                eq("text value", rs.getString("s"), "getString");
                eq(true, rs.getBoolean("b"), "getBoolean");
                eq(bytes ? Arrays.toString(BYTES) : "null", Arrays.toString(rs.getBytes("bin")), "getBytes");
                eq(TS, rs.getTimestamp("ts"), "getTimestamp");
                eq(Integer.valueOf(-2147483648), rs.getObject("i"), "getObject int");
                eq(Long.valueOf(9007199254740993L), rs.getObject("l"), "getObject bigint");
                eq(Boolean.TRUE, rs.getObject("b"), "getObject boolean");
                eq("-2147483648", rs.getString("i"), "getString of int");

                check(rs.next(), "NULL row missing");
                eq(0, rs.getInt("i"), "NULL getInt");
                check(rs.wasNull(), "wasNull int");
                eq(0L, rs.getLong("l"), "NULL getLong");
                check(rs.wasNull(), "wasNull bigint");
                eq(0.0, rs.getDouble("d"), "NULL getDouble");
                check(rs.wasNull(), "wasNull double");
                eq(null, rs.getString("s"), "NULL getString");
                check(rs.wasNull(), "wasNull text");
                eq(false, rs.getBoolean("b"), "NULL getBoolean");
                check(rs.wasNull(), "wasNull boolean");
                eq(null, rs.getBytes("bin"), "NULL getBytes");
                eq(null, rs.getTimestamp("ts"), "NULL getTimestamp");
                check(rs.wasNull(), "wasNull timestamp");

                check(rs.next(), "row 3 missing");
                eq(0, rs.getInt("i"), "zero int");
                check(!rs.wasNull(), "zero is not NULL");
                eq(-1L, rs.getLong("l"), "-1 bigint");
                eq(-0.5e-300, rs.getDouble("d"), "tiny double");
                eq(false, rs.getBoolean("b"), "false");
                check(!rs.wasNull(), "false is not NULL");
                if (bytes)
                    eq(0, rs.getBytes("bin").length, "empty bytea");
                eq(Timestamp.valueOf("1999-12-31 23:59:59"), rs.getTimestamp("ts"), "timestamp row 3");
                check(!rs.next(), "extra row");
            }
            if (binary)
                check(ps.unwrap(PGStatement.class).isUseServerPrepare(), "not server-prepared");
        }
        // a parameter compared against each type
        try (PreparedStatement ps = c.prepareStatement("SELECT id FROM " + t
                + " WHERE l = ? AND b = ? AND s = ? AND " + (bytes ? "bin = ?" : "bin IS NULL") + " AND ts = ?")) {
            int k = 1;
            ps.setLong(k++, 9007199254740993L);
            ps.setBoolean(k++, true);
            ps.setString(k++, "text value");
            if (bytes)
                ps.setBytes(k++, BYTES);
            ps.setTimestamp(k++, TS);
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "no row matched the typed parameters");
                eq(1, rs.getInt(1), "matched id");
            }
        }
    }

    static final BigDecimal[] DECIMALS = {new BigDecimal("-1234567890.123456"), new BigDecimal("0.001"),
        new BigDecimal("1E+20"), new BigDecimal("42"), new BigDecimal("9999.9999"), new BigDecimal("0.00")};

    static void datesTimesNumeric(Connection c, String t, boolean binary) throws SQLException {
        table(c, t, "id integer PRIMARY KEY, ts timestamp, tz timestamptz, d date, tm time, n numeric");
        OffsetDateTime odt = OffsetDateTime.of(2024, 2, 29, 13, 45, 6, 123456000, ZoneOffset.ofHours(3));
        LocalDateTime ldt = LocalDateTime.of(1999, 12, 31, 23, 59, 59, 999999000);
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " VALUES (?, ?, ?, ?, ?, ?)")) {
            for (int k = 0; k < DECIMALS.length; k++) {
                ps.setInt(1, k);
                if (k % 2 == 0) {
                    ps.setTimestamp(2, TS);
                    ps.setObject(3, odt);
                    ps.setDate(4, java.sql.Date.valueOf("2024-02-29"));
                    ps.setTime(5, java.sql.Time.valueOf("13:45:06"));
                } else {
                    ps.setObject(2, ldt);
                    ps.setTimestamp(3, TS);
                    ps.setObject(4, LocalDate.of(1970, 1, 1));
                    ps.setObject(5, LocalTime.of(0, 0, 0, 1000));
                }
                ps.setBigDecimal(6, DECIMALS[k]);
                eq(1, ps.executeUpdate(), "insert " + k);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT id, ts, tz, d, tm, n FROM " + t + " ORDER BY id")) {
            try (ResultSet rs = ps.executeQuery()) {
                for (int k = 0; k < DECIMALS.length; k++) {
                    check(rs.next(), "row %d", k);
                    if (k % 2 == 0) {
                        eq(TS, rs.getTimestamp(2), "timestamp");
                        check(odt.isEqual(rs.getObject(3, OffsetDateTime.class)), "timestamptz %s, got %s", odt,
                                rs.getObject(3, OffsetDateTime.class));
                        eq(java.sql.Date.valueOf("2024-02-29"), rs.getDate(4), "date");
                        eq(java.sql.Time.valueOf("13:45:06"), rs.getTime(5), "time");
                    } else {
                        eq(ldt, rs.getObject(2, LocalDateTime.class), "timestamp as LocalDateTime");
                        eq(TS.getTime(), rs.getTimestamp(3).getTime(), "timestamptz from a Timestamp");
                        eq(LocalDate.of(1970, 1, 1), rs.getObject(4, LocalDate.class), "date as LocalDate");
                        eq(LocalTime.of(0, 0, 0, 1000), rs.getObject(5, LocalTime.class), "time as LocalTime");
                    }
                    BigDecimal n = rs.getBigDecimal(6);
                    check(n != null && n.compareTo(DECIMALS[k]) == 0, "numeric %s, got %s", DECIMALS[k], n);
                }
            }
            if (binary)
                check(ps.unwrap(PGStatement.class).isUseServerPrepare(), "not server-prepared");
        }
        // now() is a timestamptz near the client's clock
        try (PreparedStatement ps = c.prepareStatement("SELECT now()")) {
            try (ResultSet rs = ps.executeQuery()) {
                check(rs.next(), "now() row");
                long skew = Math.abs(rs.getTimestamp(1).getTime() - System.currentTimeMillis());
                check(skew < 60000, "now() is %d ms off", skew);
            }
        }
    }

    static void batchInserts(Connection c, String t, boolean rewritten) throws SQLException {
        table(c, t, "id integer PRIMARY KEY, s text, d double precision, b boolean");
        int n = 1000;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + t + " (id, s, d, b) VALUES (?, ?, ?, ?)")) {
            for (int k = 1; k <= n; k++) {
                ps.setInt(1, k);
                ps.setString(2, "s" + k);
                ps.setDouble(3, k / 4.0);
                ps.setBoolean(4, k % 2 == 0);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            eq(n, counts.length, "batch result length");
            for (int k = 0; k < n; k++)
                check(counts[k] == 1 || (rewritten && counts[k] == Statement.SUCCESS_NO_INFO),
                        "count[%d] = %d", k, counts[k]);
        }
        eq((long) n, scalarLong(c, "SELECT count(*) FROM " + t), "rows after batch");
        eq((long) n * (n + 1) / 2, scalarLong(c, "SELECT sum(id) FROM " + t), "sum of ids");
        eq((long) n / 2, scalarLong(c, "SELECT count(*) FROM " + t + " WHERE b"), "true booleans");
        // in a transaction, committed as one
        c.setAutoCommit(false);
        try (PreparedStatement ps = c.prepareStatement("UPDATE " + t + " SET s = ? WHERE id = ?")) {
            for (int k = 1; k <= 100; k++) {
                ps.setString(1, "u" + k);
                ps.setInt(2, k);
                ps.addBatch();
            }
            int[] counts = ps.executeBatch();
            for (int k = 0; k < counts.length; k++)
                check(counts[k] == 1, "update count[%d] = %d", k, counts[k]);
        }
        c.commit();
        c.setAutoCommit(true);
        eq(100L, scalarLong(c, "SELECT count(*) FROM " + t + " WHERE s LIKE 'u%'"), "updated rows");
    }

    static void serverPrepare(Connection c, int threshold) throws SQLException {
        table(c, "jdbc_prep" + threshold, "id integer PRIMARY KEY, l bigint, d double precision, s text, "
                + "b boolean, bin bytea, ts timestamp");
        try (PreparedStatement ins = c.prepareStatement("INSERT INTO jdbc_prep" + threshold
                + " VALUES (?, ?, ?, ?, ?, ?, ?)")) {
            for (int k = 1; k <= 12; k++) {
                ins.setInt(1, k);
                ins.setLong(2, 10000000000L * k);
                ins.setDouble(3, k + 0.25);
                ins.setString(4, "v" + k);
                ins.setBoolean(5, k % 3 == 0);
                ins.setBytes(6, new byte[] {(byte) k, 0, (byte) 0xfe});
                ins.setTimestamp(7, new Timestamp(TS.getTime() + k * 1000L));
                eq(1, ins.executeUpdate(), "insert " + k);
                // isUseServerPrepare: will the next execution be server-prepared
                PGStatement pg = ins.unwrap(PGStatement.class);
                eq(k + 1 >= threshold, pg.isUseServerPrepare(), "insert server-prepared after " + k);
            }
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT id, l, d, s, b, bin, ts FROM jdbc_prep" + threshold
                + " WHERE id = ?")) {
            for (int k = 1; k <= 12; k++) {
                ps.setInt(1, k);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "no row %d (execution %d)", k, k);
                    eq(k, rs.getInt(1), "id");
                    eq(10000000000L * k, rs.getLong(2), "bigint");
                    eq(k + 0.25, rs.getDouble(3), "double");
                    eq("v" + k, rs.getString(4), "text");
                    eq(k % 3 == 0, rs.getBoolean(5), "boolean");
                    eq(Arrays.toString(new byte[] {(byte) k, 0, (byte) 0xfe}), Arrays.toString(rs.getBytes(6)), "bytea");
                    eq(new Timestamp(TS.getTime() + k * 1000L), rs.getTimestamp(7), "timestamp");
                    check(!rs.next(), "extra row");
                }
                eq(k + 1 >= threshold, ps.unwrap(PGStatement.class).isUseServerPrepare(),
                        "select server-prepared after " + k);
            }
        }
        // the same SQL text in a new PreparedStatement object reuses the
        // driver's statement cache (and so the server's named statement)
        for (int round = 0; round < 3; round++) {
            try (PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM jdbc_prep" + threshold
                    + " WHERE l > ?")) {
                ps.setLong(1, 50000000000L);
                try (ResultSet rs = ps.executeQuery()) {
                    check(rs.next(), "count row");
                    eq(7L, rs.getLong(1), "count");
                }
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: OrbitJdbc URL USER PASSWORD [CHECK...]");
            System.exit(2);
        }
        url = args[0];
        user = args[1];
        password = args[2];
        List<String> names = new ArrayList<>(Arrays.asList(args).subList(3, args.length));
        if (names.isEmpty())
            names.addAll(CHECKS.keySet());
        int ok = 0, failed = 0;
        for (String name : names) {
            Check ch = CHECKS.get(name);
            if (ch == null) {
                System.err.println("no such check: " + name);
                System.exit(2);
            }
            long t0 = System.nanoTime();
            try {
                ch.run();
                ok++;
                System.out.printf("ok %s (%d ms)%n", name, (System.nanoTime() - t0) / 1000000);
            } catch (Throwable e) {
                failed++;
                String msg = String.valueOf(e);
                if (e instanceof SQLException)
                    msg += " [SQLSTATE " + ((SQLException) e).getSQLState() + "]";
                System.out.println("FAIL " + name + ": " + msg.replace('\n', ' '));
                System.err.println("---- " + name);
                e.printStackTrace();
            }
            System.out.flush();
        }
        System.out.printf("jdbc checks: %d ok, %d failed%n", ok, failed);
        System.exit(failed == 0 ? 0 : 1);
    }
}
