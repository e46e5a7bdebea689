"""Persistence: peewee models, the database connection and versioned migrations."""
