"""The preference-discerning benchmark (Mender, Sec. 3.5 and App. D): similarity
matching at scale (`matching`) of item texts and preferences embedded by steerrec.embed,
and the five evaluation axes built from them.

Importing this package imports nothing heavy; import the submodules you need.
"""
