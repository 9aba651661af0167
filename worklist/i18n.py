"""The worklist app's words in Finnish (the default), Swedish and English.

- :data:`TEXT` holds the page texts per language; :func:`texts` returns one
  language's table (unknown languages fall back to Finnish).
- :data:`STATUS_LABELS`, :data:`ROLE_LABELS`, :data:`WHAT_LABELS` and :data:`TARGET_LABELS` name the
  action statuses (:data:`worklist.db.STATUSES`), the roles
  (:data:`worklist.db.ROLES`) and the access-log events; risk bands come from
  :data:`models.risklists.BAND_LABELS`.
- :func:`label` looks a code up in one of these tables and shows an unknown
  code as itself, so a new code never breaks a page.
"""
from __future__ import annotations

from models.risklists import BAND_LABELS

#: Languages of the app; the first is the default.
LANGS = ("fi", "sv", "en")
#: Each language's name in itself, for the language switch.
LANG_NAMES = {"fi": "suomi", "sv": "svenska", "en": "English"}

#: What a case manager records (worklist.db.STATUSES), plus ``none``: no action yet.
STATUS_LABELS = {
    "fi": {"reviewed_confirmed": "arvioitu – tarve vahvistettu", "reviewed_not_needed": "arvioitu – ei tarvetta",
           "contacted": "yhteys otettu", "enrolled": "ohjattu palveluohjaukseen", "declined": "kieltäytyi",
           "not_reachable": "ei tavoitettu", "not_appropriate": "ei sovellu", "none": "ei toimenpiteitä"},
    "sv": {"reviewed_confirmed": "bedömd – behov bekräftat", "reviewed_not_needed": "bedömd – inget behov",
           "contacted": "kontaktad", "enrolled": "inskriven i servicehandledning", "declined": "avböjde",
           "not_reachable": "nåddes inte", "not_appropriate": "inte lämplig", "none": "ingen åtgärd"},
    "en": {"reviewed_confirmed": "reviewed – need confirmed", "reviewed_not_needed": "reviewed – not needed",
           "contacted": "contacted", "enrolled": "enrolled in care coordination", "declined": "declined",
           "not_reachable": "not reachable", "not_appropriate": "not appropriate", "none": "no action yet"},
}

ROLE_LABELS = {
    "fi": {"case_manager": "asiakasohjaaja", "unit_lead": "yksikön esihenkilö", "analyst": "analyytikko",
           "admin": "ylläpitäjä"},
    "sv": {"case_manager": "klienthandledare", "unit_lead": "enhetschef", "analyst": "analytiker",
           "admin": "administratör"},
    "en": {"case_manager": "case manager", "unit_lead": "unit lead", "analyst": "analyst", "admin": "administrator"},
}

#: Access-log events (worklist.accesslog.WHAT) as the admin's log page shows them.
WHAT_LABELS = {
    "fi": {"login": "kirjautuminen", "login_failed": "epäonnistunut kirjautuminen", "logout": "uloskirjautuminen",
           "view_worklist": "työlistan katselu", "view_client": "asiakassivun katselu", "export": "vienti",
           "action": "toimenpide", "view_team": "tiimin yhteenveto", "view_overview": "kokonaiskuva",
           "view_log": "lokin selaus", "user_admin": "käyttäjähallinta", "import": "tuonti",
           "lockout": "tunnus lukittu"},
    "sv": {"login": "inloggning", "login_failed": "misslyckad inloggning", "logout": "utloggning",
           "view_worklist": "arbetslista visad", "view_client": "klientsida visad", "export": "export",
           "action": "åtgärd", "view_team": "teamöversikt", "view_overview": "översikt", "view_log": "loggen visad",
           "user_admin": "användaradministration", "import": "import", "lockout": "kontot låst"},
    "en": {"login": "login", "login_failed": "failed login", "logout": "logout", "view_worklist": "worklist viewed",
           "view_client": "client page viewed", "export": "export", "action": "action", "view_team": "team summary",
           "view_overview": "overview", "view_log": "log browsed", "user_admin": "user administration",
           "import": "import", "lockout": "account locked"},
}

TEXT = {
    "fi": {
        "app": "Työlista", "login": "Kirjaudu", "logout": "Kirjaudu ulos", "username": "Käyttäjätunnus",
        "password": "Salasana", "login_failed": "Kirjautuminen epäonnistui: tarkista tunnus ja salasana.",
        "locked": "Tunnus on lukittu liian monen epäonnistuneen yrityksen jälkeen. Yritä myöhemmin uudelleen.",
        "expired": "Istunto päättyi. Kirjaudu uudelleen.", "logged_out": "Olet kirjautunut ulos.",
        "worklist": "Työlista", "team": "Tiimi", "overview": "Kokonaiskuva", "log": "Tapahtumaloki",
        "users": "Käyttäjät", "language": "Kieli", "change": "Vaihda", "target": "Lista", "band": "Riskiluokka",
        "segment": "Asiakassegmentti", "new": "Uusi listalla", "new_only": "vain uudet", "status": "Tila",
        "age": "Ikä", "age_band": "Ikäryhmä", "sort": "Järjestys", "descending": "laskeva", "filter": "Suodata",
        "clear_filters": "Tyhjennä", "all": "kaikki", "rank": "Sija", "name": "Nimi", "prob": "Todennäköisyys",
        "reasons": "Tärkeimmät syyt", "follow_up": "Seuranta", "page": "Sivu", "of": "/", "prev": "‹ edellinen",
        "next": "seuraava ›", "clients": "asiakasta", "export_csv": "Vie CSV", "export_xlsx": "Vie Excel",
        "no_rows": "Ei asiakkaita näillä ehdoilla.", "no_list": "Yhtään riskilistaa ei ole vielä tuotu.",
        "as_of": "Tilanne", "unit": "Yksikkö", "units": "Yksiköt", "yes": "uusi", "client": "Asiakas",
        "risk_now": "Riski nyt", "risk_history": "Riski aiemmilla listoilla", "list_date": "Listan päivä",
        "unit_rank": "Sija yksikössä", "all_reasons": "Syyt (viisi tärkeintä)",
        "unexplained": "ei selitetty (listan loppupää)", "need_cell": "Tarve × voimavarat",
        "data_segment": "Aineistosta johdettu segmentti", "usage": "Palvelujen käyttö 24 kk",
        "no_usage": "Palvelukäyttöä ei voi näyttää: palvelin käynnistettiin ilman --data-hakemistoa.",
        "actions": "Toimenpiteet", "no_actions": "Ei kirjattuja toimenpiteitä.", "record": "Kirjaa toimenpide",
        "reason": "Syy (pakollinen, jos ei sovellu)", "note": "Muistiinpano", "save": "Tallenna",
        "when": "Aika", "who": "Kuka", "phone": "Puhelin", "municipality": "Kunta", "birth_date": "Syntymäaika",
        "language_of_client": "Asiointikieli", "already": "Jo nyt", "intensive": "tehostetuissa palveluissa",
        "prior": "paljon palveluja käyttänyt", "role": "Rooli", "active": "Käytössä", "locked_col": "Lukittu",
        "display_name": "Nimi", "what": "Tapahtuma", "purpose": "Käyttötarkoitus", "source": "Lähde",
        "since": "Alkaen", "until": "Asti", "client_id": "Asiakastunnus", "count": "Määrä",
        "by_status": "Tilan mukaan", "by_user": "Käyttäjän mukaan", "recent": "Viimeisimmät toimenpiteet",
        "suppressed": "alle 5",
        "suppressed_note": "Alle viiden asiakkaan luvut on piilotettu (merkitty ”alle 5”).",
        "not_found": "Sivua tai asiakasta ei löytynyt.",
        "forbidden": "Tämä sivu ei ole käytettävissä roolillesi.", "bad_request": "Pyyntöä ei voitu käsitellä.",
        "csrf": "Lomake vanheni tai oli virheellinen. Yritä uudelleen.",
        "error": "Virhe", "back": "Takaisin työlistaan", "saved": "Toimenpide tallennettu.", "not_saved": "Toimenpidettä ei tallennettu",
        "note_help": "Enintään {n} merkkiä.", "list_about": "Listasta", "total": "Yhteensä",
        "overview_note": "Vain koosteluvut: ei asiakasrivejä, nimiä eikä tunnisteita.",
        "rows_shown": "Näytetään {a}–{b} / {n}", "signed_in_as": "Kirjautuneena",
        "col_clients": "Asiakkaita", "col_high": "Korkea riski", "col_actioned": "Toimenpide kirjattu",
        "model_note": "Listan laativat malli ja rekisteritiedot; asiakasohjaaja arvioi tarpeen. Todennäköisyys "
                      "kertoo, kuinka suuri osa samankaltaisista asiakkaista päätyi tulokseen.",
    },
    "sv": {
        "app": "Arbetslista", "login": "Logga in", "logout": "Logga ut", "username": "Användarnamn",
        "password": "Lösenord", "login_failed": "Inloggningen misslyckades: kontrollera användarnamn och lösenord.",
        "locked": "Kontot är låst efter för många misslyckade försök. Försök igen senare.",
        "expired": "Sessionen har gått ut. Logga in igen.", "logged_out": "Du har loggat ut.",
        "worklist": "Arbetslista", "team": "Team", "overview": "Översikt", "log": "Händelselogg",
        "users": "Användare", "language": "Språk", "change": "Byt", "target": "Lista", "band": "Riskklass",
        "segment": "Klientsegment", "new": "Ny på listan", "new_only": "endast nya", "status": "Status",
        "age": "Ålder", "age_band": "Åldersgrupp", "sort": "Ordning", "descending": "fallande", "filter": "Filtrera",
        "clear_filters": "Rensa", "all": "alla", "rank": "Plats", "name": "Namn", "prob": "Sannolikhet",
        "reasons": "Viktigaste orsaker", "follow_up": "Uppföljning", "page": "Sida", "of": "/",
        "prev": "‹ föregående", "next": "nästa ›", "clients": "klienter", "export_csv": "Exportera CSV",
        "export_xlsx": "Exportera Excel",
        "no_rows": "Inga klienter med dessa villkor.", "no_list": "Ingen risklista har importerats ännu.",
        "as_of": "Läge", "unit": "Enhet", "units": "Enheter", "yes": "ny", "client": "Klient",
        "risk_now": "Risk nu", "risk_history": "Risk på tidigare listor", "list_date": "Listans datum",
        "unit_rank": "Plats i enheten", "all_reasons": "Orsaker (de fem viktigaste)",
        "unexplained": "inte förklarad (listans nedre del)", "need_cell": "Behov × resurser",
        "data_segment": "Datadrivet segment", "usage": "Tjänsteanvändning 24 mån",
        "no_usage": "Tjänsteanvändningen kan inte visas: servern startades utan --data.",
        "actions": "Åtgärder", "no_actions": "Inga registrerade åtgärder.", "record": "Registrera åtgärd",
        "reason": "Orsak (krävs om inte lämplig)", "note": "Anteckning", "save": "Spara",
        "when": "Tid", "who": "Vem", "phone": "Telefon", "municipality": "Kommun", "birth_date": "Födelsedatum",
        "language_of_client": "Språk", "already": "Redan nu", "intensive": "i intensiva tjänster",
        "prior": "storanvändare", "role": "Roll", "active": "Aktiv", "locked_col": "Låst",
        "display_name": "Namn", "what": "Händelse", "purpose": "Ändamål", "source": "Källa",
        "since": "Från", "until": "Till", "client_id": "Klient-id", "count": "Antal", "by_status": "Efter status",
        "by_user": "Efter användare", "recent": "Senaste åtgärder", "suppressed": "under 5",
        "suppressed_note": "Tal under fem klienter är dolda (markerade ”under 5”).",
        "not_found": "Sidan eller klienten hittades inte.", "forbidden": "Sidan är inte tillgänglig för din roll.",
        "bad_request": "Begäran kunde inte behandlas.", "csrf": "Formuläret har gått ut eller var ogiltigt. "
                                                               "Försök igen.",
        "error": "Fel", "back": "Tillbaka till arbetslistan", "saved": "Åtgärden sparades.", "not_saved": "Åtgärden sparades inte",
        "note_help": "Högst {n} tecken.", "list_about": "Om listan", "total": "Totalt",
        "overview_note": "Endast sammanställda tal: inga klientrader, namn eller id.",
        "rows_shown": "Visar {a}–{b} av {n}", "signed_in_as": "Inloggad som",
        "col_clients": "Klienter", "col_high": "Hög risk", "col_actioned": "Åtgärd registrerad",
        "model_note": "Listan bygger på en modell och registeruppgifter; klienthandledaren bedömer behovet.",
    },
    "en": {
        "app": "Worklist", "login": "Log in", "logout": "Log out", "username": "Username", "password": "Password",
        "login_failed": "Login failed: check the username and password.",
        "locked": "The account is locked after too many failed attempts. Try again later.",
        "expired": "Your session has ended. Please log in again.", "logged_out": "You have logged out.",
        "worklist": "Worklist", "team": "Team", "overview": "Overview", "log": "Access log", "users": "Users",
        "language": "Language", "change": "Change", "target": "List", "band": "Risk band", "segment": "Segment",
        "new": "New on list", "new_only": "new only", "status": "Status", "age": "Age", "age_band": "Age band",
        "sort": "Sort", "descending": "descending", "filter": "Filter", "clear_filters": "Clear", "all": "all",
        "rank": "Rank", "name": "Name", "prob": "Probability", "reasons": "Main reasons", "follow_up": "Follow-up",
        "page": "Page", "of": "/", "prev": "‹ previous", "next": "next ›", "clients": "clients",
        "export_csv": "Export CSV", "export_xlsx": "Export Excel", "no_rows": "No clients match these filters.",
        "no_list": "No risk list has been imported yet.", "as_of": "As of", "unit": "Unit", "units": "Units",
        "yes": "new", "client": "Client", "risk_now": "Risk now", "risk_history": "Risk on earlier lists",
        "list_date": "List date", "unit_rank": "Rank in unit", "all_reasons": "Reasons (five main)",
        "unexplained": "not explained (lower part of the list)", "need_cell": "Need × resources",
        "data_segment": "Data-driven segment", "usage": "Service use, last 24 months",
        "no_usage": "Service use cannot be shown: the server was started without --data.",
        "actions": "Actions", "no_actions": "No actions recorded.", "record": "Record an action",
        "reason": "Reason (required for not appropriate)", "note": "Note", "save": "Save", "when": "When",
        "who": "Who", "phone": "Phone", "municipality": "Municipality", "birth_date": "Date of birth",
        "language_of_client": "Language", "already": "Already", "intensive": "in intensive services",
        "prior": "already a heavy user", "role": "Role", "active": "Active", "locked_col": "Locked",
        "display_name": "Name", "what": "Event", "purpose": "Purpose", "source": "Source", "since": "From",
        "until": "Until", "client_id": "Client id", "count": "Count", "by_status": "By status", "by_user": "By user",
        "recent": "Recent actions", "suppressed": "under 5",
        "suppressed_note": "Counts under five clients are hidden (marked “under 5”).",
        "not_found": "Page or client not found.", "forbidden": "This page is not available for your role.",
        "bad_request": "The request could not be processed.",
        "csrf": "The form expired or was not valid. Please try again.", "error": "Error",
        "back": "Back to the worklist", "saved": "Action saved.", "not_saved": "The action was not saved", "note_help": "At most {n} characters.",
        "list_about": "About the list", "total": "Total",
        "overview_note": "Aggregates only: no client rows, names or ids.", "rows_shown": "Showing {a}–{b} of {n}",
        "signed_in_as": "Signed in as",
        "col_clients": "Clients", "col_high": "High risk", "col_actioned": "Action recorded",
        "model_note": "The list comes from a model and register data; the case manager judges the need. The "
                      "probability says how many similar clients reached the outcome.",
    },
}

#: Headings of the analyst's overview tables (keys of worklist.lists.overview); unknown keys shown as they are.
OVERVIEW_TITLES = {
    "fi": {"band": "Riskiluokittain", "segment": "Segmenteittäin", "status": "Toimenpiteiden tilan mukaan",
           "unit": "Yksiköittäin"},
    "sv": {"band": "Per riskklass", "segment": "Per segment", "status": "Per åtgärdsstatus", "unit": "Per enhet"},
    "en": {"band": "By risk band", "segment": "By segment", "status": "By action status", "unit": "By unit"},
}


#: Names of the lists' targets; a target not named here is shown by its code.
TARGET_LABELS = {
    "fi": {"rising_high_use": "Nousevan riskin lista", "high_use": "Paljon palveluja käyttävät (kapasiteetti)"},
    "sv": {"rising_high_use": "Lista över stigande risk", "high_use": "Storanvändare (kapacitet)"},
    "en": {"rising_high_use": "Rising-risk list", "high_use": "Heavy users (capacity)"},
}


def lang_or_default(lang: str | None) -> str:
    """``lang`` if the app speaks it, else Finnish."""
    return lang if lang in LANGS else LANGS[0]


def texts(lang: str | None) -> dict[str, str]:
    """The page texts of ``lang`` (Finnish for an unknown language)."""
    return TEXT[lang_or_default(lang)]


def label(kind: str, code, lang: str | None) -> str:
    """A code's name in ``lang``: ``kind`` is status, role, what, band, overview or target; unknown codes as
    themselves.

    Examples
    --------
    >>> label("status", "contacted", "sv")
    'kontaktad'
    >>> label("band", "high", "en")
    'high'
    """
    tables = {"status": STATUS_LABELS, "role": ROLE_LABELS, "what": WHAT_LABELS, "band": BAND_LABELS,
              "overview": OVERVIEW_TITLES, "target": TARGET_LABELS}
    if code is None:
        return ""
    return tables[kind][lang_or_default(lang)].get(str(code), str(code))


__all__ = ["LANGS", "LANG_NAMES", "OVERVIEW_TITLES", "ROLE_LABELS", "STATUS_LABELS", "TARGET_LABELS", "TEXT",
           "WHAT_LABELS", "label", "lang_or_default", "texts"]
