"""How the bot reads: what people type (names, contacts, places, questions) and the files
organisers edit (the petition, the FAQ).

Plain functions of plain values, below every feature: a feature asks them, never the other
way round.
"""
