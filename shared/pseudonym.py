"""The pseudonymous person id that stands for a NIP outside the city node.

HMAC-SHA256 of the NIP with one secret shared by every node of a deployment: the same person
gets the same id in every city, so a civil servant who transfers keeps one JP ledger
nationally, while nobody without the secret can go from id back to NIP (a plain hash of an
18-digit number with a structured birth date could be brute-forced in hours).
"""

import hashlib
import hmac


def person_id(nip: str, secret: str) -> str:
    return hmac.new(secret.encode(), nip.encode(), hashlib.sha256).hexdigest()[:32]
