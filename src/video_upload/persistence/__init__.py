"""The metadata database: the only package that speaks SQL (SQLAlchemy, asyncpg, sqlite3)."""
