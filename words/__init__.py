"""The words, below everything else: Khmer-aware text handling (`text`) and the gettext
catalogs (`i18n`). The catalogs themselves live in `locales/`."""
