"""Signing: attestation page, signature fields, signers, validation, public verification.

Owns signed documents (every version of a certified copy's PDF, by hash), signer
profiles and registered keys.  Other modules call ``services`` (create_document,
prepare/record the leader's signature, seal, delivery_gate); they never touch the PDF
or these tables themselves.  When a leader's signature comes back from the leader's
own signer, the ``signing.leader_signed`` hook tells whoever waits for it.
"""
from flask_babel import lazy_gettext as _l

from app.menus import ADMINISTRATION, OFFICE_SETTINGS
from app.modules import Api, Job, Link, ModuleSpec, View

MODULE = ModuleSpec(
    name="signing",
    depends=("platform",),
    models="modules.signing.models",
    menu=(
        # Anonymous doors that cost CPU or guess secrets: a budget per address.
        View("modules.signing.views:VerifyView", rate_limit="VERIFY_RATE_LIMIT"),
        Link("Verify a copy", _l("Verify a certified copy"), "/verify/", "fa-qrcode"),
        Api("modules.signing.api:VerifyApi", rate_limit="VERIFY_RATE_LIMIT"),
        # The leader's signing plugin: one-time links to fetch and return the file.
        View("modules.signing.views:SignerFilesView", rate_limit="SIGNER_RATE_LIMIT"),
        Api("modules.signing.api:LeaderKeyApi"),
        View("modules.signing.views:SignerProfileView", "Signing keys", _l("Signers"),
             "fa-key", OFFICE_SETTINGS),
        View("modules.signing.views:SigningKeyView", "Registered signing keys",
             _l("Registered signing keys"), "fa-lock", ADMINISTRATION),
        Link("Register a signing key", _l("Register a signing key"),
             "/signingkeyview/register", "fa-plus", ADMINISTRATION),
        View("modules.signing.views:SecondFactorView", "Leaders' signing codes",
             _l("Leaders' signing codes"), "fa-mobile", ADMINISTRATION),
        View("modules.signing.views:AttestationWordingView", "Attestation wording",
             _l("Attestation wording"), "fa-paragraph", ADMINISTRATION),
        # A leader whose key the server holds sets up their one-time codes (linked from
        # the request page when a code is needed).
        View("modules.signing.views:MyCodeView"),
        # A leader whose key is at a remote signing provider binds their credential.
        View("modules.signing.views:RemoteCredentialView"),
        # ... and where a provider that asks in its app says a signing moved on.
        View("modules.signing.views:RemoteWebhookView", rate_limit="SIGNER_RATE_LIMIT"),
    ),
    roles={
        "OfficeAdmin": [
            ["^SignerProfileView$", "^(can_list|can_show|can_add|can_edit|can_image)$"],
            ["^SigningKeyView$", "^(can_list|can_show)$"],
            ["^(Signing keys)$", "^menu_access$"],
        ],
        "Leader": [["^LeaderKeyApi$", "^can_post$"], ["^MyCodeView$", "^can_index$"],
                   ["^RemoteCredentialView$", "^can_index$"]],
        "Public": [["^Verify a copy$", "^menu_access$"]],
    },
    offers_hooks=("signing.leader_signed",),
    health={"signers": "modules.signing.keys:signer_health",
            "archive": "modules.signing.services:archive_health"},
    cli="modules.signing.cli:register",
    # Archive timestamps renewed before their TSA certificate expires (B-LTA upkeep).
    jobs=(Job("signing.archive_renewal", "modules.signing.jobs:renewal_job",
              cron={"hour": "2", "minute": "23"}),
          Job("signing.warm_explanations", "modules.signing.jobs:warm_explanations_job",
              seconds=15, seconds_setting="VERIFY_WARM_SECONDS")),
    demo="modules.signing.demo:load",
    warm_up="modules.signing.services:warm_up",
    file_refs="modules.signing.services:file_refs",
)
