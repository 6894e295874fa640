"""The preference-discerning benchmark (Mender, Sec. 3.5 and App. D): embeddings of item
texts and preferences (`embed`), similarity matching at scale (`matching`), and the five
evaluation axes built from them.

Importing this package imports nothing heavy; import the submodules you need.
"""
