"""The report's page templates (Jinja2) and style sheet, installed as package data."""
