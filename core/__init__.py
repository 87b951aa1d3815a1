"""Core of zhiwen: settings, the data model, errors and text utilities. Imports no other zhiwen package."""
