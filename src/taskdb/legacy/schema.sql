-- Task Copilot's tables as its migrations leave them (the columns orchestrate relies on,
-- and the neighbours it ignores). orchestrate never creates a task database: this is for the
-- demo and the tests, so both build databases in the real schema from one definition.
CREATE TABLE initiatives (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT, updated_at TEXT);
CREATE TABLE prds (id TEXT PRIMARY KEY, initiative_id TEXT, title TEXT NOT NULL, content TEXT,
                   metadata TEXT DEFAULT '{}', created_at TEXT, updated_at TEXT);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    prd_id TEXT,
    parent_id TEXT,
    title TEXT NOT NULL,
    description TEXT,
    assigned_agent TEXT,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'blocked', 'completed', 'cancelled')),
    blocked_reason TEXT,
    notes TEXT,
    metadata TEXT DEFAULT '{}',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    archived INTEGER DEFAULT 0,
    archived_at TEXT,
    archived_by_initiative_id TEXT
);
CREATE INDEX idx_tasks_status ON tasks(status);
CREATE TABLE work_products (id TEXT PRIMARY KEY, task_id TEXT, type TEXT, title TEXT, content TEXT, created_at TEXT);
CREATE TABLE activity_log (id INTEGER PRIMARY KEY AUTOINCREMENT, entity_type TEXT, entity_id TEXT, action TEXT, created_at TEXT);
CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at TEXT);
