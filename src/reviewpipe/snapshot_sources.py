"""Route corpus versions: the one ``pubmed.xml`` uses per PMID, and each other's RIS file."""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

__all__ = ["HOST_KINDS", "INDEXES", "PATH_RULES", "PUBLISHER", "REGISTRIES",
           "choose_pubmed_versions", "is_pubmed_page", "source_host", "source_kind"]

PUBLISHER, REGISTRIES, INDEXES = "publisher-pmc", "registries", "indexes-mirrors"

# Where each site kind goes. Keys are hosts or parent domains; the longest match wins, so
# ``pmc.ncbi.nlm.nih.gov`` and ``www.ncbi.nlm.nih.gov`` can differ. Library-proxy hosts
# (``0-www-…brum.beds.ac.uk``) are listed under the site they proxy.
HOST_KINDS: dict[str, str] = {
    # PMC, publishers' own platforms (incl. hosting/resolver/proxy front-ends, congress
    # organisers and a publisher's staging site), and sites that are the original publisher.
    "pmc.ncbi.nlm.nih.gov": PUBLISHER,
    "0-www-mdpi-com.brum.beds.ac.uk": PUBLISHER,
    "ajpojournals.org": PUBLISHER, "advbiores.net": PUBLISHER,
    "apodc-2019.p.asnevents.com.au": PUBLISHER, "biomedcentral.com": PUBLISHER,
    "bmj.com": PUBLISHER, "bmjjournals.com": PUBLISHER, "cjns.gums.ac.ir": PUBLISHER,
    "cochranelibrary.com": PUBLISHER,
    "develop-sr3snxi-tt7lcx6s5gdv4.us-4.platformsh.site": PUBLISHER,
    "dovepress.com": PUBLISHER, "dx.doi.org": PUBLISHER, "err.eg.net": PUBLISHER,
    "erar.springeropen.com": PUBLISHER, "eurjther.com": PUBLISHER,
    "frontiersin.org": PUBLISHER, "heel-spur.info": PUBLISHER, "hindawi.com": PUBLISHER,
    "highwire.org": PUBLISHER, "ijms.sums.ac.ir": PUBLISHER,
    "informahealthcare.com": PUBLISHER, "inventi.in": PUBLISHER, "ircmj.com": PUBLISHER,
    "jfas.org": PUBLISHER, "jfootankleres.com": PUBLISHER, "jmums.mazums.ac.ir": PUBLISHER,
    "jneonatalsurg.com": PUBLISHER, "journalmsr.com": PUBLISHER,
    "journals.humankinetics.com": PUBLISHER, "jrms.mui.ac.ir": PUBLISHER,
    "kmuj.kmu.edu.pk": PUBLISHER, "link.springer.com": PUBLISHER,
    "linkinghub.elsevier.com": PUBLISHER, "mdpi.com": PUBLISHER, "medcentral.com": PUBLISHER,
    "medicopublication.com": PUBLISHER, "medscimonit.com": PUBLISHER,
    "mjiri.iums.ac.ir": PUBLISHER, "ptj.uswr.ac.ir": PUBLISHER,
    "rehabilityjournal.com": PUBLISHER, "revesppod.com": PUBLISHER, "sjmms.net": PUBLISHER,
    "smj.org.sg": PUBLISHER, "springermedicine.com": PUBLISHER, "wjgnet.com": PUBLISHER,
    "world.physio": PUBLISHER, "xiahepublishing.com": PUBLISHER,
    # Trial registries and the sites that mirror their entries.
    "anzctr.org.au": REGISTRIES, "clinconnect.io": REGISTRIES,
    "clinicaltrialcompass.org": REGISTRIES, "clinicaltrials.gov": REGISTRIES,
    "clincosm.com": REGISTRIES, "crick.ai": REGISTRIES, "ctv.veeva.com": REGISTRIES,
    "ichgcp.net": REGISTRIES, "inclinicaltrials.com": REGISTRIES, "meddatax.com": REGISTRIES,
    "medifind.com": REGISTRIES, "obesityhealthmatters.com": REGISTRIES,
    "participaid.co": REGISTRIES, "trial.medpath.com": REGISTRIES, "trials.co": REGISTRIES,
    "trialx.com": REGISTRIES,
    # PubMed itself (only versions not chosen for pubmed.xml would land here), other indexes,
    # library catalogues and institutional repositories, aggregators, and mirrors: document
    # sharing, blogs and clinic sites reposting abstracts, SEO/spam copies.
    "pubmed.ncbi.nlm.nih.gov": INDEXES, "www.ncbi.nlm.nih.gov": INDEXES,
    "pubmed.gov": INDEXES, "0-www-ncbi-nlm-nih-gov.brum.beds.ac.uk": INDEXES,
    "123docz.net": INDEXES, "1library.net": INDEXES, "abcdocz.com": INDEXES,
    "ai-bt.com": INDEXES, "blogspot.com": INDEXES, "booksci.cn": INDEXES,
    "c.coek.info": INDEXES, "cn1699.cn": INDEXES, "cricutcom-setup.com": INDEXES,
    "cuir.car.chula.ac.th": INDEXES, "dialnet.unirioja.es": INDEXES,
    "discovery.researcher.life": INDEXES, "doaj.org": INDEXES, "docksci.com": INDEXES,
    "docslib.org": INDEXES, "doczz.net": INDEXES, "econpapers.repec.org": INDEXES,
    "eurekamag.com": INDEXES, "exonmedical.com": INDEXES, "explore.openaire.eu": INDEXES,
    "fdocument.pub": INDEXES, "fdokumen.com": INDEXES, "fitforthem.unipa.it": INDEXES,
    "globalauthorid.com": INDEXES, "ideas.repec.org": INDEXES,
    "integrative-archives.com": INDEXES, "integrativedryneedling.com": INDEXES,
    "jeonwal.com": INDEXES, "katalog.k.utb.cz": INDEXES, "katalog.lib.cas.cz": INDEXES,
    "libmast.utm.my": INDEXES, "lubbockacupuncture.com": INDEXES,
    "medicinelakex1.com": INDEXES, "medluna.com": INDEXES, "medworm.com": INDEXES,
    "metajournal.com": INDEXES, "nydnrehab.com": INDEXES, "oalib.com": INDEXES,
    "omicsdi.org": INDEXES, "ouci.dntb.gov.ua": INDEXES, "painpluscpn.ca": INDEXES,
    "pdffox.com": INDEXES, "peeref.com": INDEXES, "pesquisa.bvsalud.org": INDEXES,
    "physiospot.com": INDEXES, "podac.info": INDEXES, "prideseotools.com": INDEXES,
    "produccioncientifica.ucm.es": INDEXES, "qxmd.com": INDEXES, "readbyqxmd.com": INDEXES,
    "readkong.com": INDEXES, "scholars.latrobe.edu.au": INDEXES,
    "scholarworks.atsu.edu": INDEXES, "scite.ai": INDEXES, "scribd.com": INDEXES,
    "search.pedro.org.au": INDEXES, "searchworks.staging.jioinstitute.edu.in": INDEXES,
    "slideshare.net": INDEXES, "studylib.es": INDEXES, "tmno.ch": INDEXES,
    "tomesphere.com": INDEXES, "unboundmedicine.com": INDEXES, "vdocument.in": INDEXES,
    "vdocuments.site": INDEXES, "zendy.io": INDEXES, "zhixidata.com": INDEXES,
}
# ICH GCP mirrors registry entries, but its /publications/ pages are copies of PubMed records.
PATH_RULES: list[tuple[str, re.Pattern[str], str]] = [
    ("ichgcp.net", re.compile(r"/clinical-trials-registry/publications/"), INDEXES),
]


def source_host(url: str) -> str:
    """The page's host, lower-case, without port or a trailing dot."""
    return (urlsplit(url).hostname or "").rstrip(".").lower()


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def source_kind(record: dict[str, Any]) -> tuple[str, str]:
    """``(kind, rule)`` for a record: which RIS file it goes to and why."""
    url = record["source_url"]
    host, path = source_host(url), urlsplit(url).path
    for domain, pattern, kind in PATH_RULES:
        if (host == domain or host.endswith("." + domain)) and pattern.search(path):
            return kind, f"path {domain}{pattern.pattern}"
    parts = host.split(".")
    for i in range(len(parts)):
        domain = ".".join(parts[i:])
        if domain in HOST_KINDS:
            return HOST_KINDS[domain], f"table {domain}"
    if _is_ip(host):
        return INDEXES, "fallback: IP address"
    if record["publication_types"] == ["Registry Record"]:
        return REGISTRIES, "fallback: Registry Record"
    return INDEXES, "fallback: unknown host"


def is_pubmed_page(url: str) -> bool:
    """True for a PubMed page: pubmed.ncbi.nlm.nih.gov, pubmed.gov, ncbi…/pubmed (or proxied)."""
    host, path = source_host(url), urlsplit(url).path
    ncbi = "ncbi.nlm.nih.gov" in host or "ncbi-nlm-nih-gov" in host
    return "pubmed" in host or (ncbi and path.startswith("/pubmed"))


def choose_pubmed_versions(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """PMID → the version pubmed.xml is built from (a PubMed page first, else lowest rec_id)."""
    versions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r["rec_id"]):
        if record.get("pmid"):
            versions[record["pmid"]].append(record)
    chosen = {}
    for pmid, group in versions.items():
        pages = [r for r in group if is_pubmed_page(r["source_url"])]
        chosen[pmid] = (pages or group)[0]
    return dict(sorted(chosen.items(), key=lambda kv: int(kv[0])))
