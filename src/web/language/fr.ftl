# The source site's words in French ("vous").
# Same messages and variables as en.ftl, in the same order (tests/languages.rs checks).
# Terms: code = code, submission = envoi, desk = service, newsroom = rédaction,
# inbox = boîte de réception, reply = réponse, upload = transfert, log in = se connecter,
# onion address = adresse .onion, Tor Browser = Navigateur Tor, Safest = « Le plus sûr ».
# Typography: no-break space (U+00A0) before ":" and inside « », narrow no-break
# space (U+202F) before ";" and "?", no-break space between a number and its unit.

## How numbers are written in this language (used by the server, not shown alone).
number-group = { "\u202F" }
number-decimal = ,
size-bytes = { $n } octets
size-kb = { $n } Ko
size-mb = { $n } Mo
size-gb = { $n } Go
size-tb = { $n } To

## Every page.
site = Dépôt sécurisé
languages = Langues
not-onion = Vous n’utilisez pas l’adresse .onion de ce site. Pour votre sécurité, ouvrez l’adresse .onion dans le Navigateur Tor.
onion-is = L’adresse .onion de ce site est :
contact = Contact :

## The landing page.
landing-title = Envoyez-nous des documents, en toute sécurité
landing-intro = Ceci est un dépôt sécurisé. Vous pouvez nous envoyer des documents et un message sans créer de compte et sans nous dire qui vous êtes.
instructions-title = Avant d’envoyer
safety-title = Protégez-vous
safety-tor = Utilisez le Navigateur Tor avec le niveau de sécurité réglé sur « Le plus sûr ».
safety-device = Utilisez un appareil et un réseau qui n’appartiennent pas à votre employeur.
safety-encrypted = Vos fichiers sont chiffrés dès leur arrivée ; seule la rédaction peut les lire, sur un ordinateur qui n’est jamais connecté à Internet.
safety-code = Après votre premier envoi, vous recevrez un code. C’est le seul moyen de retrouver votre conversation avec nous : personne ne peut le récupérer.
start = Envoyer des documents ou un message
returning = Vous nous avez déjà envoyé quelque chose ? Connectez-vous avec votre code
retention-title = Durée de conservation sur ce site
retention-items =
    { $days ->
        [one] Ce que vous envoyez est supprimé de ce serveur { $days } jour après son arrivée.
       *[other] Ce que vous envoyez est supprimé de ce serveur { $days } jours après son arrivée.
    }
retention-pulled =
    { $days ->
        [one] Ce que vous envoyez est supprimé de ce serveur { $days } jour après son téléchargement par la rédaction.
       *[other] Ce que vous envoyez est supprimé de ce serveur { $days } jours après son téléchargement par la rédaction.
    }
retention-inactive =
    { $days ->
        [one] Si vous ne vous connectez pas pendant { $days } jour, votre conversation est supprimée, avec les réponses de la rédaction, et votre code cesse de fonctionner.
       *[other] Si vous ne vous connectez pas pendant { $days } jours, votre conversation est supprimée, avec les réponses de la rédaction, et votre code cesse de fonctionner.
    }

## The form for documents and a message.
submit-title = Envoyer des documents ou un message
desk-legend = Qui doit le recevoir ?
desk-advice = Seul le service que vous choisissez peut lire ce que vous envoyez, maintenant et par la suite.
message-label = Votre message
message-limit = Jusqu’à { $chars } caractères.
files-label = Fichiers
files-limit =
    { $count ->
        [one] Jusqu’à { $count } fichier, { $size } au total.
       *[other] Jusqu’à { $count } fichiers, { $size } au total.
    }
send = Envoyer

## The page that shows a new source its code.
code-title = Merci. Conservez ce code.
code-paper = Notez ce code sur papier et gardez-le en lieu sûr, loin de vos appareils.
code-back = Grâce à lui, vous pourrez revenir plus tard lire nos réponses et nous envoyer autre chose.
code-once = Il n’est affiché que cette fois-ci. Personne, pas même nous, ne peut le récupérer.
code-english = Le code est composé de mots anglais, quelle que soit la langue d’affichage de ce site : recopiez-les exactement tels qu’ils s’affichent.
go-inbox = Aller à votre boîte de réception

## Logging in.
login-title = Se connecter avec votre code
code-label = Votre code (8 mots)
code-hint = Les 8 mots anglais qui vous ont été donnés, séparés par des espaces.
log-in = Se connecter
login-failed-title = Échec de la connexion
login-failed = Ce code n’a donné accès à rien. Vérifiez les mots et réessayez.

## The inbox.
inbox-title = Votre boîte de réception
received = Reçu le { $day } : { $what }.
received-messages =
    { $n ->
        [one] { $n } message
       *[other] { $n } messages
    }
received-files =
    { $n ->
        [one] { $n } fichier
       *[other] { $n } fichiers
    }
received-both = { $messages } et { $files }
received-again = Votre envoi est bien arrivé ; inutile de le renvoyer.
your-desk = Vous êtes en contact avec :
new-code-title = Votre nouveau code
new-code-advice = Notez ce nouveau code dès maintenant. Votre ancien code reste valable jusqu’à ce que vous confirmiez ci-dessous ; ensuite, seul le nouveau code ouvre votre boîte de réception.
new-code-confirm = J’ai noté mon nouveau code
replies-title = Réponses de la rédaction
no-replies = Pas encore de réponse. Revenez plus tard.
reply-unreadable = Cette réponse n’a pas pu être ouverte.
delete-reply = Supprimer cette réponse
follow-up-title = Envoyer autre chose
log-out = Se déconnecter
closed-title = Conversation fermée
closed = La rédaction a fermé cette conversation et l’a supprimée du serveur, avec ses réponses. Votre code ne fonctionne plus. Si vous voulez envoyer quelque chose de nouveau, faites un nouvel envoi : vous recevrez un nouveau code.

## Refusals and errors.
back = Retour à l’accueil
nothing-kept = Rien n’a été conservé de cette tentative.
error-label = Erreur :
form-expired-title = Formulaire expiré
form-expired = Ce formulaire n’a pas été envoyé depuis ce site, ou il a expiré. Revenez en arrière, rechargez la page et réessayez.
form-unreadable-title = Formulaire illisible
form-unreadable = Le formulaire n’a pas pu être lu. Revenez en arrière et réessayez.
too-slow-title = Délai dépassé
too-slow = Le formulaire a mis trop de temps à arriver. Revenez en arrière et réessayez.
too-large-title = Trop volumineux
too-large = Votre envoi dépasse la limite de { $limit }. Envoyez moins de fichiers ou des fichiers plus petits, ou faites plusieurs envois.
too-many-files-title = Trop de fichiers
too-many-files =
    { $count ->
        [one] Vous pouvez envoyer au plus { $count } fichier à la fois. Faites un autre envoi pour le reste.
       *[other] Vous pouvez envoyer au plus { $count } fichiers à la fois. Faites un autre envoi pour le reste.
    }
message-too-long-title = Message trop long
message-too-long = Un message peut compter au plus { $chars } caractères. Mettez un texte plus long dans un fichier.
message-not-text-title = Message illisible
message-not-text = Le message n’a pas pu être lu comme du texte. Mettez-le plutôt dans un fichier.
empty-title = Rien à envoyer
empty = Écrivez un message ou choisissez au moins un fichier.
upload-failed-title = Échec du transfert
upload-failed = Le transfert n’a pas pu être reçu en entier. Veuillez réessayer.
busy-title = Site très sollicité
busy-server = Le serveur est occupé en ce moment. Veuillez réessayer dans quelques minutes.
busy-uploads = De nombreux transferts sont en cours en ce moment. Veuillez réessayer dans quelques minutes.
busy-rate = Ce site reçoit beaucoup d’envois en ce moment ; il cesse d’en accepter pendant un court moment. Rien n’a été enregistré. Veuillez réessayer dans quelques minutes.
no-space-title = Espace insuffisant
no-space-server = Le serveur manque d’espace disque en ce moment. Veuillez réessayer plus tard.
no-space-uploads = Le serveur n’a plus de place pour de nouveaux transferts en ce moment. Veuillez réessayer plus tard.
gone-title = Conversation fermée
gone = La rédaction a fermé cette conversation. Faites un nouvel envoi si vous souhaitez envoyer autre chose.
no-desk-title = Choisissez le destinataire
no-desk = Choisissez le service auquel votre envoi est destiné. Rien n’a été envoyé.
unknown-desk-title = Service inconnu
unknown-desk = Le service que vous avez choisi n’existe pas (ou plus) ici. Rechargez la page et choisissez à nouveau. Rien n’a été envoyé.
desk-closed-title = Service fermé
desk-closed = Le service avec lequel vous étiez en contact n’accepte plus d’envois. Vous pouvez toujours vous connecter pour lire ses réponses. Rien n’a été envoyé.
server-error-title = Erreur du serveur
server-error = Un problème est survenu de notre côté. Veuillez réessayer plus tard.
session-ended-title = Session terminée
session-ended = Votre session a pris fin, donc rien n’a été envoyé. Reconnectez-vous avec votre code, puis envoyez vos fichiers.
not-found-title = Page introuvable
not-found = Il n’y a aucune page à cette adresse.
no-reply-title = Introuvable
no-reply = Cette réponse n’existe pas.
not-allowed-title = Non autorisé
not-allowed = Cette page ne peut pas être utilisée de cette façon.
