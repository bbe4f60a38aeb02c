# The source site's words in Spanish (neutral international Spanish, "usted").
# Same messages and variables as en.ftl, in the same order (tests/languages.rs checks).
# Terms: code = código, submission = envío, desk = sección, newsroom = redacción,
# inbox = bandeja de entrada, reply = respuesta, upload = subida, log in = entrar,
# onion address = dirección onion, Tor Browser = Navegador Tor, Safest = «La más segura».

## How numbers are written in this language (used by the server, not shown alone).
number-group = .
number-decimal = ,
size-bytes = { $n } bytes
size-kb = { $n } KB
size-mb = { $n } MB
size-gb = { $n } GB
size-tb = { $n } TB

## Every page.
site = Buzón seguro
languages = Idiomas
not-onion = No está usando la dirección onion de este sitio. Por su seguridad, abra la dirección onion en el Navegador Tor.
onion-is = La dirección onion de este sitio es:
contact = Contacto:

## The landing page.
landing-title = Envíenos documentos de forma segura
landing-intro = Este es un buzón seguro. Puede enviarnos documentos y un mensaje sin crear una cuenta y sin decirnos quién es.
instructions-title = Antes de enviar
safety-title = Cómo protegerse
safety-tor = Use el Navegador Tor con el nivel de seguridad en «La más segura».
safety-device = Use un dispositivo y una red que no sean de su empleador.
safety-encrypted = Sus archivos se cifran al llegar; solo la redacción puede leerlos, en un equipo que nunca se conecta a internet.
safety-code = Después de su primer envío recibirá un código. Es la única forma de volver a su conversación con nosotros: nadie puede recuperarlo.
start = Enviar documentos o un mensaje
returning = ¿Ya nos envió algo? Entre con su código
retention-title = Cuánto tiempo se guarda lo que envía
retention-items =
    { $days ->
        [one] Lo que envía se elimina de este servidor { $days } día después de llegar.
       *[other] Lo que envía se elimina de este servidor { $days } días después de llegar.
    }
retention-pulled =
    { $days ->
        [one] Lo que envía se elimina de este servidor { $days } día después de que la redacción lo descargue.
       *[other] Lo que envía se elimina de este servidor { $days } días después de que la redacción lo descargue.
    }
retention-inactive =
    { $days ->
        [one] Si no entra durante { $days } día, su conversación se elimina, junto con las respuestas de la redacción, y su código deja de funcionar.
       *[other] Si no entra durante { $days } días, su conversación se elimina, junto con las respuestas de la redacción, y su código deja de funcionar.
    }

## The form for documents and a message.
submit-title = Enviar documentos o un mensaje
desk-legend = ¿Quién debe recibirlo?
desk-advice = Solo la sección que elija podrá leer lo que envíe, ahora y más adelante.
message-label = Mensaje
message-limit = Hasta { $chars } caracteres.
files-label = Archivos
files-limit =
    { $count ->
        [one] Hasta { $count } archivo, { $size } en total.
       *[other] Hasta { $count } archivos, { $size } en total.
    }
send = Enviar

## The page that shows a new source its code.
code-title = Gracias. Guarde este código.
code-paper = Anote este código en papel y guárdelo en un lugar seguro, lejos de sus dispositivos.
code-back = Con él podrá volver más tarde para leer nuestras respuestas y enviar más.
code-once = Solo se muestra esta vez. Nadie, ni siquiera nosotros, puede recuperarlo.
code-english = El código está formado por palabras en inglés, sea cual sea el idioma en que vea este sitio: escríbalas exactamente como aparecen.
go-inbox = Ir a su bandeja de entrada

## Logging in.
login-title = Entrar con su código
code-label = Su código (8 palabras)
code-hint = Las 8 palabras en inglés que recibió, separadas por espacios.
log-in = Entrar
login-failed-title = No se pudo entrar
login-failed = Ese código no dio acceso a nada. Revise las palabras e inténtelo de nuevo.

## The inbox.
inbox-title = Su bandeja de entrada
received = Recibido el { $day }: { $what }.
received-messages =
    { $n ->
        [one] { $n } mensaje
       *[other] { $n } mensajes
    }
received-files =
    { $n ->
        [one] { $n } archivo
       *[other] { $n } archivos
    }
received-both = { $messages } y { $files }
received-again = Llegó sin problemas; no necesita enviarlo de nuevo.
your-desk = Está en contacto con:
new-code-title = Su nuevo código
new-code-advice = Anote ahora este nuevo código. Su código anterior sigue funcionando hasta que confirme abajo; después, solo el nuevo código abre su bandeja de entrada.
new-code-confirm = He anotado mi nuevo código
replies-title = Respuestas de la redacción
no-replies = Todavía no hay respuestas. Vuelva a consultar más tarde.
reply-unreadable = No se pudo abrir esta respuesta.
delete-reply = Eliminar esta respuesta
follow-up-title = Enviar más
log-out = Salir
closed-title = Conversación cerrada
closed = La redacción ha cerrado esta conversación y la ha eliminado del servidor, junto con sus respuestas. Su código ya no funciona. Si quiere enviar algo nuevo, empiece un nuevo envío: recibirá un código nuevo.

## Refusals and errors.
back = Volver al inicio
nothing-kept = No se conservó nada de este intento.
error-label = Error en este campo:
form-expired-title = Formulario caducado
form-expired = Este formulario no se envió desde este sitio, o ha caducado. Vuelva atrás, recargue la página e inténtelo de nuevo.
form-unreadable-title = Formulario ilegible
form-unreadable = No se pudo leer el formulario. Vuelva atrás e inténtelo de nuevo.
too-slow-title = Tiempo agotado
too-slow = El formulario tardó demasiado en llegar. Vuelva atrás e inténtelo de nuevo.
too-large-title = Demasiado grande
too-large = Su envío supera el límite de { $limit }. Envíe menos archivos o archivos más pequeños, o repártalos en varios envíos.
too-many-files-title = Demasiados archivos
too-many-files =
    { $count ->
        [one] Puede enviar como máximo { $count } archivo a la vez. Haga otro envío con el resto.
       *[other] Puede enviar como máximo { $count } archivos a la vez. Haga otro envío con el resto.
    }
message-too-long-title = Mensaje demasiado largo
message-too-long = Un mensaje puede tener como máximo { $chars } caracteres. Si su texto es más largo, póngalo en un archivo.
message-not-text-title = Mensaje ilegible
message-not-text = No se pudo leer el mensaje como texto. Póngalo en un archivo.
empty-title = Nada que enviar
empty = Escriba un mensaje o elija al menos un archivo.
upload-failed-title = La subida falló
upload-failed = No se pudo leer la subida completa. Inténtelo de nuevo.
busy-title = Servicio ocupado
busy-server = El servidor está ocupado en este momento. Inténtelo de nuevo dentro de unos minutos.
busy-uploads = Hay muchas subidas en curso en este momento. Inténtelo de nuevo dentro de unos minutos.
busy-rate = Este sitio está recibiendo muchos envíos en este momento, así que durante un rato no acepta más. No se guardó nada. Inténtelo de nuevo dentro de unos minutos.
no-space-title = Sin espacio
no-space-server = Al servidor le falta espacio en disco en este momento. Inténtelo de nuevo más tarde.
no-space-uploads = El servidor no tiene espacio para nuevas subidas en este momento. Inténtelo de nuevo más tarde.
gone-title = Conversación cerrada
gone = La redacción ha cerrado esta conversación. Si quiere enviar más, empiece un nuevo envío.
no-desk-title = Elija quién lo recibe
no-desk = Elija la sección a la que va dirigido su envío. No se envió nada.
unknown-desk-title = Sección desconocida
unknown-desk = La sección que eligió no existe aquí (o ha dejado de existir). Recargue la página y vuelva a elegir. No se envió nada.
desk-closed-title = Sección cerrada
desk-closed = La sección con la que estaba en contacto ya no acepta envíos. Aún puede entrar para leer sus respuestas. No se envió nada.
server-error-title = Error del servidor
server-error = Algo falló por nuestra parte. Inténtelo de nuevo más tarde.
session-ended-title = Sesión finalizada
session-ended = Su sesión terminó, así que no se envió nada. Vuelva a entrar con su código y después envíe sus archivos.
not-found-title = Página no encontrada
not-found = No hay ninguna página en esta dirección.
no-reply-title = Respuesta no encontrada
no-reply = Esa respuesta no existe.
not-allowed-title = No permitido
not-allowed = Esta página no se puede usar de esa manera.
